/**
 * Stage summary: what the study found, from the files the other runs wrote. It rebuilds the eval grid from every
 * model's cells, the transfer matrix and index, the estimators' correlations with the real fine-tuned scores (the
 * fine-tuned model of each zoo model on each target task), the tidy results table (CSV and Parquet), learning
 * curves, summary.json, and the HTML report.
 */
import { existsSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { resolveGridConfig } from '../../eval/grid/config.ts';
import { runEvalGrid } from '../../eval/grid/run.ts';
import type { EvalGrid } from '../../eval/grid/schema.ts';
import { computeTransfer, type TransferResult } from '../../eval/transfer.ts';
import { loadTransferInput } from '../../eval/transfer-input.ts';
import { csvLine, writeTransferOutputs } from '../../eval/transfer-output.ts';
import { type AccuracyRow, type SweepResult, summarizeSweep } from '../../metrics/sweep.ts';
import { linePlotSpec, savePlot } from '../../report/plot.ts';
import { writeReport } from '../../report/write-report.ts';
import { readJsonl } from '../../train/logging/jsonl-log.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-write.ts';
import { evalRunGrid } from '../external/eval-server.ts';
import type { PlannedRun } from '../plan/types.ts';
import { RunStore } from '../store.ts';
import { bestEstimators } from './best-estimator.ts';
import { runWhere, type StageContext, type StageResult } from './context.ts';

export const SUMMARY_SCHEMA = 'transferlab-summary/1';

export interface ResultRow {
  kind: 'eval' | 'estimator' | 'train';
  model: string;
  finetuned_on: string;
  strategy: string;
  lora_rank: number | null;
  seed: number | null;
  task: string;
  metric: string;
  value: number;
  n_samples: number | null;
  low: number | null;
  high: number | null;
  run_id: string;
}

const RESULT_COLUMNS: (keyof ResultRow)[] = [
  'kind',
  'model',
  'finetuned_on',
  'strategy',
  'lora_rank',
  'seed',
  'task',
  'metric',
  'value',
  'n_samples',
  'low',
  'high',
  'run_id',
];

function runsOf(ctx: StageContext, stage: PlannedRun['stage']): PlannedRun[] {
  return ctx.plan.runs.filter((r) => r.stage === stage && ctx.run.deps.includes(r.id));
}

/** eval_grid.json and the cookbook list, rebuilt from every evaluated model's cells (nothing is evaluated). */
async function rebuildGrid(ctx: StageContext): Promise<EvalGrid | null> {
  const evals = runsOf(ctx, 'eval');
  if (evals.length === 0) return null;
  // Each model as its eval run evaluated it (a served model's cells are keyed by what was served).
  const grids = evals.map((r) => evalRunGrid(ctx, r.config as Record<string, unknown>));
  const doc = { ...grids[0].settings, models: grids.map((g) => g.model) };
  const config = resolveGridConfig(doc, runWhere(ctx), { out: ctx.plan.out, baseDir: ctx.plan.out });
  return runEvalGrid(config, { evaluate: false, quiet: true });
}

function walkJson(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return walkJson(path);
    return name.endsWith('.json') ? [path] : [];
  });
}

/** Sweep results of the metrics runs this summary depends on. */
function estimatorResults(ctx: StageContext): SweepResult[] {
  return runsOf(ctx, 'metrics').flatMap((r) =>
    walkJson(join(ctx.plan.out, r.outputs[0])).map((f) => JSON.parse(readFileSync(f, 'utf8')) as SweepResult),
  );
}

/** The actual scores the estimators predict: zoo model m fine-tuned on t (the chosen strategy, mean over seeds) on t. */
function actualScores(ctx: StageContext, grid: EvalGrid | null, strategy: string): AccuracyRow[] {
  if (!grid) return [];
  const groups = new Map<string, number[]>();
  for (const r of runsOf(ctx, 'finetune')) {
    const p = r.params as { model: string; task: string; strategy: string };
    if (p.strategy !== strategy) continue;
    const cell = grid.cells.find((c) => c.model === r.name && c.task === p.task && c.status === 'done');
    if (!cell) continue;
    const key = JSON.stringify([p.model, p.task]);
    groups.set(key, [...(groups.get(key) ?? []), cell.score!]);
  }
  return [...groups].map(([key, values]) => {
    const [model, task] = JSON.parse(key) as [string, string];
    return { model, task, accuracy: values.reduce((a, b) => a + b, 0) / values.length };
  });
}

function resultRows(ctx: StageContext, grid: EvalGrid | null, estimators: SweepResult[]): ResultRow[] {
  const rows: ResultRow[] = [];
  // A fine-tune and its eval run share a name: look the model up among the fine-tunes.
  const byName = new Map(runsOf(ctx, 'finetune').map((r) => [r.name, r]));
  const metricRuns = new Map(
    runsOf(ctx, 'metrics').map((r) => [`${r.params.model}\u0000${r.params.task}`, r.id]),
  );
  for (const c of grid?.cells ?? []) {
    if (c.status !== 'done') continue;
    const ft = byName.get(c.model);
    const p = (ft ? ft.params : null) as {
      model: string;
      task: string;
      strategy: string;
      lora_rank: number | null;
      seed: number;
    } | null;
    const evalRun = ctx.plan.runs.find((r) => r.stage === 'eval' && r.name === c.model);
    rows.push({
      kind: 'eval',
      model: p?.model ?? c.model,
      finetuned_on: p?.task ?? '',
      strategy: p?.strategy ?? 'zero-shot',
      lora_rank: p?.lora_rank ?? null,
      seed: p?.seed ?? null,
      task: c.task,
      metric: c.topline_metric!,
      value: c.score!,
      n_samples: c.n,
      low: c.ci?.low ?? null,
      high: c.ci?.high ?? null,
      run_id: evalRun?.id ?? '',
    });
  }
  for (const r of estimators)
    rows.push({
      kind: 'estimator',
      model: r.model,
      finetuned_on: '',
      strategy: 'zero-shot',
      lora_rank: null,
      seed: r.seed,
      task: r.task,
      metric: r.metric,
      value: r.score,
      n_samples: r.n_samples,
      low: null,
      high: null,
      run_id: metricRuns.get(`${r.model}\u0000${r.task}`) ?? '',
    });
  const store = new RunStore(ctx.plan.out);
  for (const r of runsOf(ctx, 'finetune')) {
    const result = store.read(r.id)?.result;
    if (!result) continue;
    const p = r.params as {
      model: string;
      task: string;
      strategy: string;
      lora_rank: number | null;
      seed: number;
    };
    for (const metric of ['train_loss', 'eval_loss', 'eval_accuracy'] as const) {
      const v = result[metric];
      if (typeof v !== 'number') continue;
      rows.push({
        kind: 'train',
        model: p.model,
        finetuned_on: p.task,
        strategy: p.strategy,
        lora_rank: p.lora_rank,
        seed: p.seed,
        task: p.task,
        metric,
        value: v,
        n_samples: null,
        low: null,
        high: null,
        run_id: r.id,
      });
    }
  }
  return rows;
}

function writeResults(out: string, rows: ResultRow[]): void {
  writeFileAtomic(
    join(out, 'results.csv'),
    [csvLine(RESULT_COLUMNS), ...rows.map((r) => csvLine(RESULT_COLUMNS.map((c) => r[c])))].join(''),
  );
  const tmp = join(out, `.results.parquet.tmp-${process.pid}`);
  const str = (c: keyof ResultRow) => ({
    name: c,
    data: rows.map((r) => String(r[c] ?? '')),
    type: 'STRING' as const,
  });
  const num = (c: keyof ResultRow) => ({
    name: c,
    data: rows.map((r) => (r[c] === null ? null : Number(r[c]))),
    type: 'DOUBLE' as const,
  });
  parquetWriteFile({
    filename: tmp,
    columnData: [
      str('kind'),
      str('model'),
      str('finetuned_on'),
      str('strategy'),
      num('lora_rank'),
      num('seed'),
      str('task'),
      str('metric'),
      num('value'),
      num('n_samples'),
      num('low'),
      num('high'),
      str('run_id'),
    ],
  });
  renameSync(tmp, join(out, 'results.parquet'));
}

/** Every fine-tuning run's training loss against steps, one series per run. */
async function learningCurves(ctx: StageContext): Promise<string[]> {
  const series = runsOf(ctx, 'finetune').flatMap((r) => {
    const file = join(ctx.plan.out, 'finetune_logs', r.name, 'metrics.jsonl');
    if (!existsSync(file)) return [];
    const points = readJsonl(file)
      .records.filter((e) => e.split === 'train' && typeof e.loss === 'number')
      .map((e) => ({ x: Number(e.step), y: Number(e.loss) }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    return points.length ? [{ name: r.name, points }] : [];
  });
  if (!series.length) return [];
  const saved = await savePlot(
    linePlotSpec({
      title: 'fine-tuning: training loss',
      x: { title: 'step', scale: 'linear' },
      y: { title: 'loss', scale: 'log' },
      series,
    }),
    join(ctx.plan.out, 'plots', 'learning_curves'),
  );
  return [saved.svg, saved.png];
}

/**
 * Cells left out of the transfer matrix, one note per reason: a study of 13 models × 10 tasks skips dozens of cells
 * for the same reason (text-only models on image tasks), which one line says better than dozens.
 */
function excludedNotes(
  excluded: readonly { model: string; task: string; status: string; reason: string }[],
): string[] {
  const groups = new Map<
    string,
    { status: string; reason: string; models: Set<string>; tasks: Set<string>; n: number }
  >();
  for (const e of excluded) {
    const reason = e.reason.replace(`'${e.model}'`, 'the model');
    const key = `${e.status}\u0000${reason}`;
    const g = groups.get(key) ?? { status: e.status, reason, models: new Set(), tasks: new Set(), n: 0 };
    g.models.add(e.model);
    g.tasks.add(e.task);
    g.n++;
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => {
    if (g.n === 1) {
      const e = excluded.find((x) => x.status === g.status && g.models.has(x.model) && g.tasks.has(x.task))!;
      return `${e.model} × ${e.task}: ${e.status} (${e.reason})`;
    }
    return `${g.n} cells ${g.status} (${g.reason}): ${listed([...g.models], 'model')}; ${listed([...g.tasks], 'task')}`;
  });
}

/** "models a, b, c" or, past six, "32 models: a, b, c, d and 28 more" (transfer.json's `excluded` lists every cell). */
function listed(names: readonly string[], noun: string): string {
  if (names.length <= 6) return `${noun}${names.length === 1 ? '' : 's'} ${names.join(', ')}`;
  return `${names.length} ${noun}s: ${names.slice(0, 4).join(', ')} and ${names.length - 4} more`;
}

export async function runSummaryStage(ctx: StageContext): Promise<StageResult> {
  const out = ctx.plan.out;
  const c = ctx.run.config as { actual_strategy: string; report: boolean };
  const notes: string[] = [];
  const grid = await rebuildGrid(ctx);
  let transfer: TransferResult | null = null;
  if (grid) {
    transfer = computeTransfer(loadTransferInput(out), {});
    await writeTransferOutputs(transfer, out);
    notes.push(...transfer.warnings);
    notes.push(...excludedNotes(transfer.excluded));
  }
  const estimators = estimatorResults(ctx);
  const actual = actualScores(ctx, grid, c.actual_strategy);
  const sweep = estimators.length ? await summarizeSweep(estimators, actual, join(out, 'metrics')) : null;
  const curves = await learningCurves(ctx);
  writeResults(out, resultRows(ctx, grid, estimators));

  const correlations = sweep?.correlations ?? [];
  notes.push(...(sweep?.warnings ?? []));
  const best = bestEstimators(correlations, actual);
  const store = new RunStore(out);
  const counts: Record<string, Record<string, number>> = {};
  for (const r of ctx.plan.runs) {
    const state = r.id === ctx.run.id ? 'running' : store.effectiveState(store.read(r.id));
    counts[r.stage] ??= {};
    counts[r.stage][state] = (counts[r.stage][state] ?? 0) + 1;
  }
  const summary = {
    schema: SUMMARY_SCHEMA,
    experiment: { name: ctx.plan.experiment, updated_at: new Date().toISOString(), runs: counts },
    transfer: transfer?.matrix ?? null,
    estimators: correlations,
    actual_scores: actual,
    best_estimator: best,
    plots: [...(sweep?.plots ?? []), ...curves].map((p) => relative(out, p)),
    notes: [...ctx.plan.notes, ...notes],
  };
  writeJsonAtomic(join(out, 'summary.json'), summary);
  const report = c.report ? await writeReport(out, { quiet: ctx.quiet }) : null;
  return {
    report: report ? relative(out, report.index) : null,
    cells: grid?.cells.length ?? 0,
    estimator_scores: estimators.length,
    best_estimator: best,
  };
}
