/**
 * The transfer analysis's files (docs/transfer-and-shift.md): transfer.json (the TransferResult),
 * transferability_results.csv (one row per model × eval task) and transfer_heatmap.svg/.png (score and delta vs
 * base). Every file is written to a temp name and renamed.
 */
import { join } from 'node:path';
import { savePlot } from '../report/plot.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.ts';
import { heatmapSpec } from './heatmap.ts';
import type { Statistic, TransferCell, TransferResult } from './transfer.ts';

/** The CSV's columns, in order (documented in docs/transfer-and-shift.md). */
export const TRANSFER_CSV_COLUMNS = [
  'model',
  'role',
  'base_model',
  'strategy',
  'train_task',
  'eval_task',
  'status',
  'reason',
  'n',
  'topline_metric',
  'score',
  'score_low',
  'score_high',
  'delta_vs_base',
  'delta_vs_base_low',
  'delta_vs_base_high',
  'in_task_model',
  'delta_vs_in_task',
  'delta_vs_in_task_low',
  'delta_vs_in_task_high',
  'relative_gain',
  'relative_gain_low',
  'relative_gain_high',
  'in_task_relative_gain',
  'transfer_index',
  'transfer_index_low',
  'transfer_index_high',
  'transfer_index_undefined_resamples',
  'transfer_index_reason',
] as const;

/** One RFC 4180 field: quoted when it holds a comma, quote or line break. */
export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(fields: (string | number | null | undefined)[]): string {
  return `${fields.map(csvField).join(',')}\n`;
}

function triple(s: Statistic): [number | null, number | null, number | null] {
  return [s.value, s.low, s.high];
}

export function transferCsv(result: TransferResult): string {
  const models = new Map(result.models.map((m) => [m.name, m]));
  let out = csvLine([...TRANSFER_CSV_COLUMNS]);
  for (const c of result.cells) {
    const m = models.get(c.model)!;
    out += csvLine([
      c.model,
      m.role,
      c.base_model,
      m.strategy,
      c.train_task,
      c.task,
      c.status,
      c.reason,
      c.n,
      c.topline_metric,
      ...triple(c.score),
      ...triple(c.delta_vs_base),
      c.in_task_model,
      ...triple(c.delta_vs_in_task),
      ...triple(c.relative_gain),
      c.in_task_relative_gain.value,
      ...triple(c.transfer_index),
      c.transfer_index.undefined_resamples,
      c.transfer_index.value === null ? c.transfer_index.reason : undefined,
    ]);
  }
  return out;
}

export interface TransferFiles {
  json: string;
  csv: string;
  heatmap: { svg: string; png: string };
}

export async function writeTransferOutputs(result: TransferResult, outDir: string): Promise<TransferFiles> {
  const json = join(outDir, 'transfer.json');
  const csv = join(outDir, 'transferability_results.csv');
  writeJsonAtomic(json, result);
  writeFileAtomic(csv, transferCsv(result));
  const { models, tasks } = result.matrix;
  const spec = heatmapSpec('Transfer matrix (rows: models, columns: eval tasks)', [
    { title: 'score', rows: models, columns: tasks, values: result.matrix.score },
    {
      title: 'Δ vs base',
      rows: models,
      columns: tasks,
      values: result.matrix.delta_vs_base,
      diverging: true,
    },
  ]);
  const heatmap = await savePlot(spec, join(outDir, 'transfer_heatmap'));
  return { json, csv, heatmap };
}

/** A short text table for the terminal: score (Δ vs base) per model × task, and the index. */
export function transferSummary(result: TransferResult): string {
  const { models, tasks } = result.matrix;
  const fmt = (v: number | null, signed = false) =>
    v === null ? 'n/a' : `${signed && v > 0 ? '+' : ''}${v.toFixed(3)}`;
  const byKey = new Map<string, TransferCell>(result.cells.map((c) => [`${c.model}\u0000${c.task}`, c]));
  const header = ['model', ...tasks];
  const rows = models.map((m) => [
    m,
    ...tasks.map((t) => {
      const c = byKey.get(`${m}\u0000${t}`)!;
      const parts = [fmt(c.score.value)];
      if (c.delta_vs_base.value !== null) parts.push(`(${fmt(c.delta_vs_base.value, true)})`);
      if (c.transfer_index.value !== null) parts.push(`idx ${fmt(c.transfer_index.value)}`);
      return parts.join(' ');
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
