/**
 * The geometry figures: profiles against layer (lines, through report/plot's line spec) and heatmaps (CKA between
 * the layers of two models, probe accuracy per grid position), written as SVG and PNG.
 */
import type { TopLevelSpec } from 'vega-lite';
import { type LineSeries, linePlotSpec, savePlot } from '../report/plot.ts';

export interface HeatmapPlot {
  title: string;
  x: string;
  y: string;
  /** values[row][col]; rows are drawn top to bottom. */
  values: number[][];
  rowLabels?: string[];
  colLabels?: string[];
  /** Colour domain (default the data's range). */
  domain?: [number, number];
  /** Print each value in its cell. */
  annotate?: boolean;
}

export function heatmapSpec(p: HeatmapPlot): TopLevelSpec {
  const rows = p.rowLabels ?? p.values.map((_, i) => String(i));
  const cols = p.colLabels ?? (p.values[0] ?? []).map((_, j) => String(j));
  const values = p.values.flatMap((row, i) =>
    row.map((v, j) => ({
      row: rows[i],
      col: cols[j],
      value: v,
      text: Number.isFinite(v) ? v.toFixed(2) : '',
    })),
  );
  const cell = Math.max(14, Math.min(48, Math.floor(420 / Math.max(rows.length, cols.length))));
  const base = {
    x: { field: 'col', type: 'ordinal' as const, title: p.x, sort: cols },
    y: { field: 'row', type: 'ordinal' as const, title: p.y, sort: rows },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: p.title,
    background: 'white',
    width: cell * cols.length,
    height: cell * rows.length,
    data: { values },
    layer: [
      {
        mark: 'rect',
        encoding: {
          ...base,
          color: {
            field: 'value',
            type: 'quantitative',
            title: null,
            scale: { scheme: 'viridis', ...(p.domain ? { domain: p.domain } : {}) },
          },
        },
      },
      ...(p.annotate
        ? [
            {
              mark: { type: 'text' as const, fontSize: 10 },
              encoding: {
                ...base,
                text: { field: 'text' },
                color: { condition: { test: 'datum.value < 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
}

/** A per-layer profile (one line per condition). */
export async function saveProfilePlot(
  base: string,
  title: string,
  yTitle: string,
  series: LineSeries[],
): Promise<{ svg: string; png: string }> {
  const spec = linePlotSpec({ title, x: { title: 'layer' }, y: { title: yTitle }, series }) as unknown as {
    layer: { encoding: { x: Record<string, unknown> } }[];
  };
  // layers are integers: whole-number ticks only
  for (const l of spec.layer) l.encoding.x = { ...l.encoding.x, axis: { tickMinStep: 1, format: 'd' } };
  return savePlot(spec as unknown as TopLevelSpec, base);
}

export async function saveHeatmap(base: string, plot: HeatmapPlot): Promise<{ svg: string; png: string }> {
  return savePlot(heatmapSpec(plot), base);
}
