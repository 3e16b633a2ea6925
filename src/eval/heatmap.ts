/**
 * Heatmaps of labelled matrices (the transfer matrix, pairwise shift matrices) as vega-lite specs for
 * src/report/plot.ts's savePlot: one panel per matrix side by side, each cell coloured and printed; undefined
 * cells are grey and marked "n/a".
 */
import type { TopLevelSpec } from 'vega-lite';

export interface HeatmapPanel {
  title: string;
  rows: string[];
  columns: string[];
  /** rows × columns; null = undefined. */
  values: (number | null)[][];
  /** A diverging colour scale centred on 0 (deltas), else a sequential one. */
  diverging?: boolean;
  rowTitle?: string;
  columnTitle?: string;
}

function formatCell(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(1);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 3);
}

function panelSpec(p: HeatmapPanel, index: number): Record<string, unknown> {
  const values = p.rows.flatMap((r, i) =>
    p.columns.map((c, j) => {
      const v = p.values[i]?.[j] ?? null;
      return { row: r, column: c, value: v, label: v === null ? 'n/a' : formatCell(v), panel: index };
    }),
  );
  const x = {
    field: 'column',
    type: 'nominal',
    sort: p.columns,
    title: p.columnTitle ?? null,
    axis: { labelAngle: -30 },
  };
  const y = { field: 'row', type: 'nominal', sort: p.rows, title: p.rowTitle ?? null };
  const finite = values.filter((v) => v.value !== null).map((v) => v.value as number);
  const extent = Math.max(1e-12, ...finite.map(Math.abs));
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 0;
  const color = p.diverging ? { scheme: 'redblue', domain: [-extent, extent] } : { scheme: 'blues' };
  // white text on the dark end of the scale
  const dark = p.diverging
    ? `datum.value !== null && abs(datum.value) > ${0.6 * extent}`
    : `datum.value !== null && datum.value > ${lo + 0.6 * (hi - lo)}`;
  return {
    title: p.title,
    width: Math.max(120, 56 * p.columns.length),
    height: Math.max(60, 22 * p.rows.length),
    data: { values },
    layer: [
      {
        transform: [{ filter: 'datum.value !== null' }],
        mark: 'rect',
        encoding: { x, y, color: { field: 'value', type: 'quantitative', title: null, scale: color } },
      },
      {
        transform: [{ filter: 'datum.value === null' }],
        mark: { type: 'rect', color: '#e6e6e6' },
        encoding: { x, y },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          x,
          y,
          text: { field: 'label' },
          color: { condition: { test: dark, value: 'white' }, value: 'black' },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  };
}

/** Panels side by side, each with its own colour scale. */
export function heatmapSpec(title: string, panels: HeatmapPanel[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    hconcat: panels.map(panelSpec),
    resolve: { scale: { color: 'independent' } },
    config: { view: { stroke: null } },
  } as unknown as TopLevelSpec;
}
