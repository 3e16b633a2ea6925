/**
 * Sample-size sweeps (LoCoMoSeT-style): every (model, task, metric, n_samples, seed) is scored on a stratified
 * subsample and written to its own JSON file, so an interrupted sweep resumes by skipping finished results and
 * folders from several machines merge by copying. Each result carries a content key (a hash of the estimator, its
 * options, the sample size, the seed and the feature/label/probability values scored); a result whose key differs
 * from what the config now asks for is computed again. A summary adds mean/std over seeds and, when fine-tuned
 * accuracies are given, the rank correlation of each metric with them, plus plots.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { canonicalJson } from '../data/canonical-json.ts';
import { toolVersion } from '../data/version.ts';
import { type Matrix, selectRows } from '../linalg/matrix.ts';
import { linePlotSpec, savePlot, scatterPlotSpec } from '../report/plot.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { parseCsv } from '../util/csv.ts';
import { didYouMean } from '../util/did-you-mean.ts';
import { TlabError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import { zodIssuesError } from '../util/zod-errors.ts';
import { readLabelFile, readMatrixFile } from './features.ts';
import { encodeLabels } from './input.ts';
import {
  bootstrapInterval,
  kendallTau,
  pearson,
  relativeTop1,
  spearman,
  weightedKendallTau,
} from './rank-correlation.ts';
import {
  correlationReliability,
  DEFAULT_TIE_TOLERANCE,
  kendallPermutationPValue,
  mergeTies,
} from './rank-ties.ts';
import { type MetricParams, metricSpec, scoreMetric } from './registry.ts';
import { mulberry32, permutation } from './rng.ts';

const paramValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const metricEntry = z.union([
  z.string(),
  z
    .object({
      name: z.string(),
      id: z.string().optional(),
      options: z.record(z.string(), paramValue).optional(),
    })
    .strict(),
]);

export const SweepConfigSchema = z
  .object({
    entries: z
      .array(
        z
          .object({
            model: z.string().min(1),
            task: z.string().min(1),
            features: z.string().min(1),
            labels: z.string().min(1),
            source_probs: z.string().optional(),
          })
          .strict(),
      )
      .min(1),
    metrics: z.array(metricEntry).min(1),
    /**
     * Subsample sizes; 'all' (or a size >= N) uses every row. Every seed would score those same rows, so that
     * cell is scored once, with the first seed.
     */
    n_samples: z.array(z.union([z.number().int().positive(), z.literal('all')])).default(['all']),
    seeds: z.array(z.number().int().nonnegative()).default([0]),
    /** Fine-tuned accuracies: a JSON or CSV file with model, task, accuracy. */
    accuracy: z.string().optional(),
    /** Estimator scores equal within this relative difference are ties in the rank correlations (default 1e-6). */
    tie_tolerance: z.number().min(0).optional(),
  })
  .strict();

export type SweepConfig = z.infer<typeof SweepConfigSchema>;

export interface MetricRef {
  id: string;
  name: string;
  options: MetricParams;
}

export interface SweepResult {
  /** Content key: what was scored and how (see resultKey); a result is reused only when it matches. */
  key: string;
  model: string;
  task: string;
  metric: string;
  metric_name: string;
  options: MetricParams;
  n_samples: number;
  seed: number;
  score: number;
  n: number;
  d: number;
  c: number;
  seconds: number;
  /** Every row was scored (no subsample): `seed` is the sweep's first seed and stands for all of them. */
  all_rows?: boolean;
}

export function loadSweepConfig(path: string): { config: SweepConfig; baseDir: string } {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (error) {
    throw new TlabError(`${path}: cannot read sweep config (${(error as Error).message})`);
  }
  const parsed = SweepConfigSchema.safeParse(raw);
  if (!parsed.success) throw zodIssuesError(path, [], parsed.error);
  return { config: parsed.data, baseDir: dirname(resolve(path)) };
}

export function metricRefs(config: SweepConfig): MetricRef[] {
  const refs = config.metrics.map((m) =>
    typeof m === 'string'
      ? { id: m, name: m, options: {} }
      : { id: m.id ?? m.name, name: m.name, options: (m.options ?? {}) as MetricParams },
  );
  const seen = new Set<string>();
  for (const [i, r] of refs.entries()) {
    const spec = metricSpec(r.name);
    // Checked here, not when scoring, so a typo fails before any features are read.
    const unknown = Object.keys(r.options).filter((k) => !spec.params.includes(k));
    if (unknown.length)
      throw new TlabError(
        `sweep config: metrics.${i}.options: unknown option ${unknown.map((k) => `'${k}'${didYouMean(k, spec.params)}`).join(', ')} of ${r.name}`,
        spec.params.length ? `valid options: ${spec.params.join(', ')}` : `${r.name} takes no options`,
      );
    if (seen.has(r.id))
      throw new TlabError(`sweep config: metric id '${r.id}' appears twice; give one an 'id'`);
    seen.add(r.id);
  }
  return refs;
}

/**
 * A stratified subsample of `n` rows: classes keep their proportions (largest remainder, at least one row per
 * class when n allows), rows within a class chosen by a seeded shuffle. Returned indices are sorted.
 */
export function stratifiedSubsample(y: Int32Array, numClasses: number, n: number, seed: number): Int32Array {
  const total = y.length;
  if (n >= total) return Int32Array.from({ length: total }, (_, i) => i);
  const rng = mulberry32(seed);
  const order = permutation(total, rng);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (const i of order) byClass[y[i]].push(i);
  const quota = byClass.map((rows) => (rows.length * n) / total);
  const take = quota.map((q, c) =>
    Math.min(byClass[c].length, Math.max(n >= numClasses ? 1 : 0, Math.floor(q))),
  );
  let left = n - take.reduce((a, b) => a + b, 0);
  const byRemainder = quota
    .map((q, c) => ({ c, r: q - Math.floor(q) }))
    .sort((a, b) => b.r - a.r || a.c - b.c);
  while (left > 0) {
    let progressed = false;
    for (const { c } of byRemainder) {
      if (left === 0) break;
      if (take[c] < byClass[c].length) {
        take[c]++;
        left--;
        progressed = true;
      }
    }
    if (!progressed) break;
  }
  while (left < 0) {
    // minimum-one rule overshot: trim the largest classes
    const c = take.indexOf(Math.max(...take));
    take[c]--;
    left++;
  }
  const out = byClass.flatMap((rows, c) => rows.slice(0, take[c]));
  return Int32Array.from(out).sort();
}

export interface AccuracyRow {
  model: string;
  task: string;
  accuracy: number;
}

const ACCURACY_COLUMNS = ['model', 'task', 'accuracy'];

/** Fine-tuned accuracies from a CSV (header model,task,accuracy) or a JSON array of {model, task, accuracy}. */
export function readAccuracyTable(path: string): AccuracyRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TlabError(
      `${path}: cannot read accuracy table (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  const empty = () =>
    new TlabError(
      `${path}: the accuracy table has no rows`,
      'expected a CSV header model,task,accuracy (or a JSON array of {model, task, accuracy}) and one row per model and task',
    );
  let rows: Record<string, unknown>[];
  if (path.endsWith('.json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (error) {
      throw new TlabError(`${path}: not valid JSON (${(error as Error).message})`);
    }
    if (!Array.isArray(parsed))
      throw new TlabError(`${path}: expected a JSON array of {model, task, accuracy} objects`);
    rows = parsed.map((r, i) => {
      if (r === null || typeof r !== 'object' || Array.isArray(r))
        throw new TlabError(`${path}: item ${i}: expected an object {model, task, accuracy}`);
      return r as Record<string, unknown>;
    });
  } else {
    const records = parseCsv(text, path).filter((r) => r.length > 1 || r[0].trim() !== '');
    if (records.length === 0) throw empty();
    const header = records[0].map((h) => h.trim());
    const lacking = ACCURACY_COLUMNS.filter((c) => !header.includes(c));
    if (lacking.length)
      throw new TlabError(
        `${path}: the header lacks ${lacking.map((c) => `'${c}'`).join(', ')}`,
        `header: ${header.join(',')}; expected the columns ${ACCURACY_COLUMNS.join(',')}`,
      );
    rows = records.slice(1).map((fields, i) => {
      if (fields.length !== header.length)
        throw new TlabError(
          `${path}: row ${i + 1} has ${fields.length} fields, the header has ${header.length}`,
        );
      return Object.fromEntries(fields.map((v, k) => [header[k], v.trim()]));
    });
  }
  if (rows.length === 0) throw empty();
  const seen = new Set<string>();
  return rows.map((r, i) => {
    const accuracy =
      typeof r.accuracy === 'string' && r.accuracy.trim() === '' ? Number.NaN : Number(r.accuracy);
    const name = (v: unknown) => typeof v === 'string' && v.length > 0;
    if (!name(r.model) || !name(r.task) || !Number.isFinite(accuracy) || typeof r.accuracy === 'boolean')
      throw new TlabError(
        `${path}: row ${i + 1} needs a model, a task and a numeric accuracy, got ${JSON.stringify(r)}`,
      );
    const key = JSON.stringify([r.model, r.task]);
    if (seen.has(key))
      throw new TlabError(`${path}: row ${i + 1}: model '${r.model}' on task '${r.task}' appears twice`);
    seen.add(key);
    return { model: r.model as string, task: r.task as string, accuracy };
  });
}

export interface SweepOptions {
  out: string;
  /** Recompute results whose files exist. */
  force?: boolean;
  quiet?: boolean;
}

/**
 * A name as one path segment, injectively: letters, digits, '.', '_' and '-' stay, everything else (including
 * '/' and '%') is %-escaped as in URLs, so `a/b`, `a_b` and `a%2Fb` get three different folders; '.' and '..'
 * are escaped too.
 */
export function pathSegment(name: string): string {
  const s = encodeURIComponent(name).replace(
    /[!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return s === '.' || s === '..' ? s.replace(/\./g, '%2E') : s;
}

function resultPath(
  out: string,
  model: string,
  task: string,
  metricId: string,
  n: number,
  seed: number,
): string {
  return join(
    out,
    'results',
    pathSegment(model),
    pathSegment(task),
    pathSegment(metricId),
    `n${n}_seed${seed}.json`,
  );
}

/** SHA-256 of the values an entry scores (shapes and float64 bytes of features, labels and source probabilities). */
function entryHash(e: LoadedEntry): string {
  const h = createHash('sha256');
  const add = (what: string, shape: number[], data: Float64Array) => {
    h.update(`${what}:${shape.join('x')}:`);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  };
  add('features', [e.features.rows, e.features.cols], e.features.data);
  add('labels', [e.labels.length], e.labels);
  if (e.sourceProbs) add('source_probs', [e.sourceProbs.rows, e.sourceProbs.cols], e.sourceProbs.data);
  return h.digest('hex');
}

/** The content key of one result: tool version, estimator, options, sample size, seed and the data's hash. */
export function resultKey(dataHash: string, ref: MetricRef, n: number, seed: number): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        tool: toolVersion(),
        metric: ref.name,
        options: ref.options,
        n_samples: n,
        seed,
        data: dataHash,
      }),
    )
    .digest('hex');
}

/** The stored result when it is there, parses, and was made for `key`; otherwise null (compute it again). */
function reusable(path: string, key: string): SweepResult | null {
  if (!existsSync(path)) return null;
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as SweepResult;
    return r && r.key === key && typeof r.score === 'number' ? r : null;
  } catch {
    return null;
  }
}

interface LoadedEntry {
  model: string;
  task: string;
  features: Matrix;
  labels: Float64Array;
  sourceProbs?: Matrix;
  names: { features: string; labels: string; sourceProbs?: string };
}

async function loadEntry(entry: SweepConfig['entries'][number], baseDir: string): Promise<LoadedEntry> {
  const at = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const features = await readMatrixFile(at(entry.features));
  const labels = await readLabelFile(at(entry.labels));
  const probs = entry.source_probs ? await readMatrixFile(at(entry.source_probs)) : undefined;
  if (probs && probs.rows !== features.rows)
    throw new TlabError(`${probs.name} has ${probs.rows} rows but ${features.name} has ${features.rows}`);
  return {
    model: entry.model,
    task: entry.task,
    features,
    labels: labels.labels,
    sourceProbs: probs,
    names: { features: features.name, labels: labels.name, sourceProbs: probs?.name },
  };
}

/** Runs (or resumes) a sweep; returns every result, computed or read back. */
export async function runSweep(
  config: SweepConfig,
  baseDir: string,
  options: SweepOptions,
): Promise<SweepResult[]> {
  const refs = metricRefs(config);
  const results: SweepResult[] = [];
  // An estimate: 'all' is one job per entry and metric; a size that turns out >= N is counted per seed.
  const perEntry = config.n_samples.reduce<number>((a, n) => a + (n === 'all' ? 1 : config.seeds.length), 0);
  const jobs = config.entries.length * refs.length * perEntry;
  const progress = new Progress({ total: jobs, label: 'metrics', unit: 'scores', silent: options.quiet });
  for (const entry of config.entries) {
    const e = await loadEntry(entry, baseDir);
    const enc = encodeLabels(e.labels, e.features.rows, { names: e.names });
    const dataHash = entryHash(e);
    const sizes = new Set<number>();
    for (const nSpec of config.n_samples) {
      const n = nSpec === 'all' ? e.features.rows : Math.min(nSpec, e.features.rows);
      if (sizes.has(n)) continue; // 'all' beside a size >= N, or a size twice: the same cell
      sizes.add(n);
      const allRows = n === e.features.rows;
      // Without a subsample the seed changes nothing: score once, with the first seed.
      for (const seed of allRows ? config.seeds.slice(0, 1) : config.seeds) {
        const idx = stratifiedSubsample(enc.y, enc.numClasses, n, seed);
        const sub = n === e.features.rows ? null : idx;
        const features = sub ? selectRows(e.features, sub) : e.features;
        const labels = sub ? Array.from(sub, (i) => e.labels[i]) : e.labels;
        const sourceProbs = e.sourceProbs && sub ? selectRows(e.sourceProbs, sub) : e.sourceProbs;
        for (const ref of refs) {
          const path = resultPath(options.out, e.model, e.task, ref.id, n, seed);
          const key = resultKey(dataHash, ref, n, seed);
          const stored = options.force ? null : reusable(path, key);
          if (stored) {
            results.push({ ...stored, all_rows: allRows });
            progress.tick(1, `${e.model}/${e.task} ${ref.id} (cached)`);
            continue;
          }
          const t0 = performance.now();
          const score = await scoreMetric(
            ref.name,
            { features, labels, sourceProbs, names: e.names },
            ref.options,
          );
          const r: SweepResult = {
            key,
            model: e.model,
            task: e.task,
            metric: ref.id,
            metric_name: ref.name,
            options: ref.options,
            n_samples: n,
            seed,
            score,
            n: features.rows,
            d: features.cols,
            c: new Set(labels as ArrayLike<number> as number[]).size,
            seconds: (performance.now() - t0) / 1000,
            all_rows: allRows,
          };
          writeJsonAtomic(path, r);
          results.push(r);
          progress.tick(1, `${e.model}/${e.task} ${ref.id} n=${n}`);
        }
      }
    }
  }
  progress.finish();
  return results;
}

function meanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const v = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(v) };
}

export interface SweepSummary {
  /** Mean and std over seeds per (task, metric, model, n_samples). */
  scores: {
    task: string;
    metric: string;
    model: string;
    n_samples: number;
    mean: number;
    std: number;
    seeds: number;
  }[];
  correlations: {
    task: string;
    metric: string;
    n_samples: number;
    models: number;
    kendall: number;
    kendall_ci95: [number, number];
    weighted_kendall: number;
    spearman: number;
    pearson: number;
    relative_top1: number;
    /** Two-sided exact permutation p-value of τ-b (null above 9 models). */
    kendall_p_exact: number | null;
    /** Models whose score ties another's within the tie tolerance (they share a rank). */
    tied_models: number;
    /** 'informative', or why not (fewer than 8 models, or a 95% interval of τ wider than 1). */
    reliability: string;
  }[];
  plots: string[];
  /** Correlations that cannot be read, in words (also printed by tlab metrics sweep). */
  warnings: string[];
}

/** Aggregates results, correlates with accuracies, draws plots, writes summary.json. */
export async function summarizeSweep(
  results: SweepResult[],
  accuracy: AccuracyRow[] | undefined,
  out: string,
  options: { tieTolerance?: number } = {},
): Promise<SweepSummary> {
  const tolerance = options.tieTolerance ?? DEFAULT_TIE_TOLERANCE;
  const warnings: string[] = [];
  const groups = new Map<string, SweepResult[]>();
  for (const r of results) {
    const key = JSON.stringify([r.task, r.metric, r.model, r.n_samples]);
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  const scores: SweepSummary['scores'] = [];
  for (const g of groups.values()) {
    const { mean, std } = meanStd(g.map((r) => r.score));
    scores.push({
      task: g[0].task,
      metric: g[0].metric,
      model: g[0].model,
      n_samples: g[0].n_samples,
      mean,
      std,
      seeds: g.length,
    });
  }
  scores.sort(
    (a, b) =>
      a.task.localeCompare(b.task) ||
      a.metric.localeCompare(b.metric) ||
      a.model.localeCompare(b.model) ||
      a.n_samples - b.n_samples,
  );
  const plots: string[] = [];
  const correlations: SweepSummary['correlations'] = [];
  const taskMetrics = [...new Set(scores.map((s) => JSON.stringify([s.task, s.metric])))].map(
    (k) => JSON.parse(k) as [string, string],
  );
  for (const [task, metric] of taskMetrics) {
    const rows = scores.filter((s) => s.task === task && s.metric === metric);
    const models = [...new Set(rows.map((r) => r.model))];
    const base = join(out, 'plots', pathSegment(task), pathSegment(metric));
    const line = linePlotSpec({
      title: `${metric} vs n_samples (${task})`,
      x: { title: 'n_samples', scale: 'log' },
      y: { title: `${metric} score` },
      series: models.map((m) => ({
        name: m,
        points: rows
          .filter((r) => r.model === m)
          .map((r) => ({ x: r.n_samples, y: r.mean, low: r.mean - r.std, high: r.mean + r.std })),
      })),
    });
    const saved = await savePlot(line, `${base}_vs_samples`);
    plots.push(saved.svg, saved.png);
    if (!accuracy) continue;
    const acc = new Map(accuracy.filter((a) => a.task === task).map((a) => [a.model, a.accuracy]));
    for (const n of [...new Set(rows.map((r) => r.n_samples))].sort((a, b) => a - b)) {
      const at = rows.filter((r) => r.n_samples === n && acc.has(r.model));
      if (at.length < 2) continue;
      // Scores equal up to float noise are ties, not an order (and accuracies likewise).
      const merged = mergeTies(
        at.map((r) => r.mean),
        tolerance,
      );
      const x = merged.values;
      const y = mergeTies(
        at.map((r) => acc.get(r.model) as number),
        tolerance,
      ).values;
      const ci = bootstrapInterval(kendallTau, x, y, { seed: 0 });
      const reliability = correlationReliability(at.length, [ci.low, ci.high]);
      if (reliability !== 'informative')
        warnings.push(`${task} ${metric} n=${n}: the rank correlation is ${reliability}`);
      correlations.push({
        task,
        metric,
        n_samples: n,
        models: at.length,
        kendall: kendallTau(x, y),
        kendall_ci95: [ci.low, ci.high],
        weighted_kendall: weightedKendallTau(x, y),
        spearman: spearman(x, y),
        pearson: pearson(x, y),
        relative_top1: relativeTop1(x, y),
        kendall_p_exact: kendallPermutationPValue(x, y),
        tied_models: merged.groups.reduce((a, b) => a + b, 0),
        reliability,
      });
    }
    // the largest sample size at which at least two models have an accuracy
    const c = correlations.filter((k) => k.task === task && k.metric === metric).at(-1);
    if (!c) continue;
    const largest = c.n_samples;
    const at = rows.filter((r) => r.n_samples === largest && acc.has(r.model));
    const tiedAt = mergeTies(
      at.map((r) => r.mean),
      tolerance,
    ).values;
    const tied = (i: number) => tiedAt.some((v, j) => j !== i && v === tiedAt[i]);
    const scatter = scatterPlotSpec({
      title: `${metric} vs fine-tuned accuracy (${task}, n=${largest}): Kendall τ = ${c.kendall.toFixed(3)}, weighted τ = ${c.weighted_kendall.toFixed(3)}`,
      x: { title: `${metric} score` },
      y: { title: 'fine-tuned accuracy' },
      points: at.map((r, i) => ({
        x: r.mean,
        y: acc.get(r.model) as number,
        label: tied(i) ? `${r.model} (tied)` : r.model,
      })),
    });
    const s2 = await savePlot(scatter, `${base}_vs_accuracy`);
    plots.push(s2.svg, s2.png);
  }
  const summary = { scores, correlations, plots, warnings };
  writeJsonAtomic(join(out, 'summary.json'), summary);
  return summary;
}
