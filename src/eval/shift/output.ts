/**
 * The shift analysis's files: shift.json (ShiftResult), shift_pairs.csv (one row per task pair),
 * shift_heatmap.svg/png (the pairwise matrices) and, with a transfer analysis, shift_vs_transfer.svg/png (each
 * shift quantity against the transfer index over task pairs, with Spearman's ρ in the panel title).
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { savePlot, scatterPlotSpec } from '../../report/plot.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-write.ts';
import { type HeatmapPanel, heatmapSpec } from '../heatmap.ts';
import { csvLine } from '../transfer-output.ts';
import { pairValue, SHIFT_QUANTITIES, type ShiftQuantity, type ShiftResult } from './analysis.ts';

/** Columns of shift_pairs.csv (docs/transfer-and-shift.md); empty where a measure was not run. */
export const SHIFT_CSV_COLUMNS = [
  'task_a',
  'task_b',
  'mmd2',
  'mmd_p_value',
  'mmd_sigma',
  'mmd_rows_a',
  'mmd_rows_b',
  'frechet',
  'frechet_dims',
  'domain_accuracy',
  'proxy_a_distance',
  'domain_rows_per_task',
  'label_js',
  'label_tv',
] as const;

export function shiftCsv(result: ShiftResult): string {
  let out = csvLine([...SHIFT_CSV_COLUMNS]);
  for (const p of result.pairs)
    out += csvLine([
      p.a,
      p.b,
      p.mmd?.mmd2,
      p.mmd?.pValue,
      p.mmd?.sigma,
      p.mmd?.m,
      p.mmd?.n,
      p.frechet?.distance,
      p.frechet?.dims,
      p.domain?.accuracy,
      p.domain?.proxyADistance,
      p.domain?.perTask,
      p.label?.js,
      p.label?.tv,
    ]);
  return out;
}

const TITLES: Record<ShiftQuantity, string> = {
  mmd2: 'MMD² (RBF)',
  mmd_p_value: 'MMD p-value',
  frechet: 'Fréchet distance',
  domain_accuracy: 'domain-classifier accuracy',
  proxy_a_distance: 'proxy A-distance',
  label_js: 'label JS divergence',
  label_tv: 'label TV distance',
};

/** Vega-lite: one scatter panel per correlated quantity (the shared scatter builder's layers), three per row. */
function shiftVsTransferSpec(result: ShiftResult): TopLevelSpec | null {
  const c = result.correlation;
  if (!c) return null;
  const panels = (Object.keys(c.measures) as ShiftQuantity[]).flatMap((q) => {
    const m = c.measures[q]!;
    const points = c.points
      .filter((p) => typeof p[q] === 'number')
      .map((p) => ({ x: p[q] as number, y: p.index, label: `${p.train_task}→${p.eval_task}` }));
    if (points.length === 0) return [];
    const rho =
      m.spearman === null
        ? `ρ undefined (${m.reason})`
        : `Spearman ρ = ${m.spearman.toFixed(2)}${m.low !== null ? ` [${m.low.toFixed(2)}, ${m.high!.toFixed(2)}]` : ''}`;
    const {
      $schema: _s,
      background: _b,
      ...panel
    } = scatterPlotSpec({
      title: `${TITLES[q]}: ${rho}`,
      x: { title: TITLES[q] },
      y: { title: 'transfer index g(j)/g(i)' },
      points,
      width: 300,
      height: 240,
    }) as unknown as Record<string, unknown>;
    return [{ ...panel, title: { text: TITLES[q], subtitle: rho } }];
  });
  if (panels.length === 0) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Task shift vs transfer (one point per train → eval task pair)',
    background: 'white',
    columns: 3,
    concat: panels,
  } as unknown as TopLevelSpec;
}

export interface ShiftFiles {
  json: string;
  csv: string;
  heatmap: { svg: string; png: string };
  scatter: { svg: string; png: string } | null;
}

export async function writeShiftOutputs(result: ShiftResult, outDir: string): Promise<ShiftFiles> {
  const json = join(outDir, 'shift.json');
  const csv = join(outDir, 'shift_pairs.csv');
  writeJsonAtomic(json, result);
  writeFileAtomic(csv, shiftCsv(result));
  const shown: ShiftQuantity[] = ['mmd2', 'frechet', 'proxy_a_distance', 'label_js'];
  const panels: HeatmapPanel[] = shown.flatMap((q) => {
    const m = result.matrices[q];
    return m ? [{ title: TITLES[q], rows: m.tasks, columns: m.tasks, values: m.values }] : [];
  });
  const heatmap = await savePlot(heatmapSpec('Task-to-task shift', panels), join(outDir, 'shift_heatmap'));
  const spec = shiftVsTransferSpec(result);
  const scatter = spec ? await savePlot(spec, join(outDir, 'shift_vs_transfer')) : null;
  return { json, csv, heatmap, scatter };
}

/** A terminal table: one line per pair with every measured number, then the correlations. */
export function shiftSummary(result: ShiftResult): string {
  const quantities = (Object.keys(SHIFT_QUANTITIES) as ShiftQuantity[]).filter((q) => result.matrices[q]);
  const header = ['pair', ...quantities];
  const rows = result.pairs.map((p) => [
    `${p.a}~${p.b}`,
    ...quantities.map((q) => {
      const v = pairValue(p, q);
      return v === null
        ? 'n/a'
        : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
          ? v.toExponential(2)
          : v.toFixed(4);
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  if (result.correlation) {
    out.push('', 'Spearman ρ of shift vs transfer index over task pairs:');
    for (const [q, m] of Object.entries(result.correlation.measures))
      out.push(
        `  ${q.padEnd(18)} ${m.spearman === null ? `undefined (${m.reason})` : `${m.spearman.toFixed(3)} [${m.low?.toFixed(3)}, ${m.high?.toFixed(3)}] over ${m.pairs} pairs`}`,
      );
  }
  return out.join('\n');
}
