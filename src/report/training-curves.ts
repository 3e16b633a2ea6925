/**
 * Training logs of an experiment: every metrics.jsonl a run owns (a folder in its `outputs`), plus any under the
 * standard log folders (zoo_logs/, finetune_logs/, logs/) that no run record names, so a study whose records are
 * missing still shows its curves. Series are "<split>/<metric>" over step, with wall time in seconds since the
 * log's first record.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type MetricsRecord, readJsonl } from '../train/logging/jsonl-log.ts';
import type { RunRecord } from './experiment-types.ts';

export interface TrainingLogRef {
  /** The run's name (or the log folder's name without a record). */
  name: string;
  runId: string | null;
  stage: string | null;
  /** metrics.jsonl relative to the experiment folder. */
  path: string;
}

const LOG_DIRS = ['zoo_logs', 'finetune_logs', 'logs'];

export function findTrainingLogs(
  dir: string,
  runs: readonly RunRecord[],
  warnings: string[],
): TrainingLogRef[] {
  const out: TrainingLogRef[] = [];
  const seen = new Set<string>();
  const add = (ref: TrainingLogRef) => {
    if (seen.has(ref.path)) return;
    seen.add(ref.path);
    out.push(ref);
  };
  for (const r of runs)
    for (const o of r.outputs) {
      if (typeof o !== 'string' || o.split(/[\\/]/).includes('..')) {
        warnings.push(
          `runs/${r.id}/run.json: outputs: ${JSON.stringify(o)} is not a path inside the experiment`,
        );
        continue;
      }
      const file = join(dir, o, 'metrics.jsonl');
      if (existsSync(file)) add({ name: r.name, runId: r.id, stage: r.stage, path: relative(dir, file) });
    }
  for (const d of LOG_DIRS) {
    const root = join(dir, d);
    if (!existsSync(root) || !statSync(root).isDirectory()) continue;
    for (const name of readdirSync(root).sort()) {
      const file = join(root, name, 'metrics.jsonl');
      if (!name.startsWith('.') && existsSync(file))
        add({
          name,
          runId: null,
          stage: d === 'zoo_logs' ? 'pretrain' : d === 'finetune_logs' ? 'finetune' : null,
          path: relative(dir, file),
        });
    }
  }
  return out;
}

export interface CurvePoint {
  step: number;
  /** Seconds since the log's first record. */
  wall: number;
  value: number;
}

export interface CurveSeries {
  run: string;
  /** "<split>/<metric>", as TensorBoard names the same scalars. */
  tag: string;
  points: CurvePoint[];
}

/** Every numeric series of one log (non-finite values, written as strings, are left out). */
export function readCurves(dir: string, ref: TrainingLogRef): CurveSeries[] {
  const { records } = readJsonl<MetricsRecord>(join(dir, ref.path));
  const t0 = records.find((r) => typeof r.time === 'number')?.time ?? 0;
  const series = new Map<string, CurvePoint[]>();
  for (const r of records) {
    if (typeof r.step !== 'number') continue;
    for (const [key, value] of Object.entries(r)) {
      if (key === 'step' || key === 'time' || key === 'split') continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      const tag = `${r.split}/${key}`;
      const list = series.get(tag) ?? [];
      list.push({ step: r.step, wall: typeof r.time === 'number' ? r.time - t0 : 0, value });
      series.set(tag, list);
    }
  }
  return [...series.entries()].map(([tag, points]) => ({ run: ref.name, tag, points }));
}
