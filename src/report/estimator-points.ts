/**
 * Transferability estimator results joined with the accuracy they try to predict. Results are read from every
 * JSON file under metrics/ that holds {model, task, metric, n_samples, seed, score} records (one per file as
 * `tlab metrics sweep` writes them, a list, or an object with a `results` list), so the sweep's layout and the
 * runner's metrics/<model>/<task>.json both read. The "actual" accuracy of a source model m on target task t is
 * what summary.json's `actual_scores` says (the runner's choice of strategy, mean over seeds), else the eval-grid
 * score on t of the model fine-tuned from m on t (results.csv's `finetuned_on` row), else m's own zero-shot score.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { EvalGrid } from '../eval/grid/schema.ts';
import { bootstrapInterval, kendallTau } from '../metrics/rank-correlation.ts';
import { isJsonObject, readJsonFile } from '../util/json-file.ts';
import { type ExperimentSummary, summaryEstimators } from './experiment-types.ts';

export interface EstimatorResult {
  model: string;
  task: string;
  /** The estimator's id in the sweep (its name unless the config gave another id). */
  metric: string;
  n_samples: number;
  seed: number;
  score: number;
  /** File it came from, relative to the experiment folder. */
  file: string;
}

function isResult(v: unknown): v is Omit<EstimatorResult, 'file'> {
  return (
    isJsonObject(v) &&
    typeof v.model === 'string' &&
    typeof v.task === 'string' &&
    typeof v.metric === 'string' &&
    typeof v.n_samples === 'number' &&
    typeof v.seed === 'number' &&
    typeof v.score === 'number'
  );
}

function jsonFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) {
      if (name !== 'plots') out.push(...jsonFiles(path));
    } else if (name.endsWith('.json')) out.push(path);
  }
  return out;
}

export function readEstimatorResults(dir: string, warnings: string[]): EstimatorResult[] {
  const root = join(dir, 'metrics');
  if (!existsSync(root)) return [];
  const out: EstimatorResult[] = [];
  for (const path of jsonFiles(root)) {
    let value: unknown;
    try {
      value = readJsonFile(path);
    } catch (error) {
      warnings.push((error as Error).message);
      continue;
    }
    const items = Array.isArray(value)
      ? value
      : isJsonObject(value) && Array.isArray(value.results)
        ? value.results
        : [value];
    const file = relative(dir, path);
    for (const item of items) {
      if (!isResult(item)) continue; // summaries and other files under metrics/ are not results
      if (!Number.isFinite(item.score)) {
        warnings.push(`${path}: score: ${item.score} is not a finite number (${item.metric}, ${item.model})`);
        continue;
      }
      out.push({
        model: item.model,
        task: item.task,
        metric: item.metric,
        n_samples: item.n_samples,
        seed: item.seed,
        score: item.score,
        file,
      });
    }
  }
  return out;
}

export interface ActualAccuracy {
  value: number;
  /** The grid model whose score it is (the zoo model itself for summary.json's numbers). */
  model: string;
  source: 'summary.json' | 'finetuned' | 'zero-shot';
}

/** What an estimator for (model, task) predicts: the fine-tuned score, else the zero-shot score (see above). */
export function actualAccuracy(grid: EvalGrid | null, model: string, task: string): ActualAccuracy | null {
  if (!grid) return null;
  const done = (m: string) =>
    grid.cells.find((c) => c.model === m && c.task === task && c.status === 'done' && c.score !== null);
  for (const m of grid.models)
    if (m.base === model && m.train_task === task) {
      const c = done(m.name);
      if (c) return { value: c.score as number, model: m.name, source: 'finetuned' };
    }
  const own = done(model);
  return own ? { value: own.score as number, model, source: 'zero-shot' } : null;
}

export interface EstimatorPoint {
  model: string;
  /** Mean and sample standard deviation of the score over seeds. */
  mean: number;
  std: number;
  seeds: number;
  actual: ActualAccuracy | null;
}

export interface Correlation {
  value: number | null;
  low: number | null;
  high: number | null;
  /** summary.json (the runner's number) or computed here from the points. */
  source: 'summary.json' | 'computed';
  reliability?: string;
}

export interface EstimatorGroup {
  task: string;
  metric: string;
  n_samples: number;
  points: EstimatorPoint[];
  kendall: Correlation;
}

function meanStd(v: number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const s2 = v.length > 1 ? v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) : 0;
  return { mean, std: Math.sqrt(s2) };
}

/**
 * One group per (task, estimator, n_samples): each model's mean score with its accuracy, and Kendall τ between
 * them. τ comes from summary.json for the sample size it was measured at (its `n_samples`, else the largest),
 * otherwise it is computed here with a 95% percentile bootstrap over models (as `tlab metrics sweep` does).
 */
export function estimatorGroups(
  results: readonly EstimatorResult[],
  grid: EvalGrid | null,
  summary: ExperimentSummary | null,
): EstimatorGroup[] {
  const byKey = new Map<string, EstimatorResult[]>();
  for (const r of results) {
    const key = JSON.stringify([r.task, r.metric, r.n_samples, r.model]);
    const list = byKey.get(key);
    if (list) list.push(r);
    else byKey.set(key, [r]);
  }
  const groups = new Map<string, EstimatorGroup>();
  for (const rows of byKey.values()) {
    const { task, metric, n_samples, model } = rows[0];
    const gk = JSON.stringify([task, metric, n_samples]);
    let g = groups.get(gk);
    if (!g) {
      g = {
        task,
        metric,
        n_samples,
        points: [],
        kendall: { value: null, low: null, high: null, source: 'computed' },
      };
      groups.set(gk, g);
    }
    const { mean, std } = meanStd(rows.map((r) => r.score));
    const stated = summary?.actual_scores?.find((a) => a.model === model && a.task === task);
    const actual: ActualAccuracy | null = stated
      ? { value: stated.accuracy, model, source: 'summary.json' }
      : actualAccuracy(grid, model, task);
    g.points.push({ model, mean, std, seeds: rows.length, actual });
  }
  const out = [...groups.values()].sort(
    (a, b) => a.task.localeCompare(b.task) || a.metric.localeCompare(b.metric) || a.n_samples - b.n_samples,
  );
  for (const g of out) {
    g.points.sort((a, b) => a.model.localeCompare(b.model));
    const paired = g.points.filter((p) => p.actual !== null);
    if (paired.length >= 2) {
      const x = paired.map((p) => p.mean);
      const y = paired.map((p) => (p.actual as ActualAccuracy).value);
      const ci = bootstrapInterval(kendallTau, x, y, { seed: 0 });
      const tau = kendallTau(x, y);
      g.kendall = {
        value: Number.isFinite(tau) ? tau : null,
        low: Number.isFinite(ci.low) ? ci.low : null,
        high: Number.isFinite(ci.high) ? ci.high : null,
        source: 'computed',
      };
    }
  }
  // τ as the runner reported it, where it says for which sample size (else the largest)
  for (const s of summaryEstimators(summary)) {
    const candidates = out.filter((g) => g.task === s.task && g.metric === s.metric);
    const at =
      s.n_samples !== undefined
        ? candidates.find((g) => g.n_samples === s.n_samples)
        : candidates.reduce<EstimatorGroup | undefined>(
            (best, g) => (!best || g.n_samples > best.n_samples ? g : best),
            undefined,
          );
    if (at) at.kendall = { ...s.kendall_tau, source: 'summary.json', reliability: s.reliability };
  }
  return out;
}
