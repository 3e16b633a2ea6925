/**
 * Static plots: a small vega-lite spec builder for the two shapes the lab draws most (lines with error bands,
 * labelled scatter plots), rendered headless to SVG by vega and to PNG by resvg. Results are files, so plots
 * are reproducible and need no browser.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/atomic-write.ts';

export interface Axis {
  title: string;
  scale?: 'linear' | 'log';
  /** Start the axis at zero (vega-lite's default for quantitative axes). Default false. */
  zero?: boolean;
}

export interface LinePoint {
  x: number;
  y: number;
  /** Error band limits (e.g. mean ± std, or a confidence interval). */
  low?: number;
  high?: number;
}

export interface LineSeries {
  name: string;
  points: LinePoint[];
}

export interface LinePlot {
  title: string;
  x: Axis;
  y: Axis;
  series: LineSeries[];
  width?: number;
  height?: number;
}

export interface ScatterPoint {
  x: number;
  y: number;
  /** Text drawn next to the point. */
  label?: string;
  /** Colour group. */
  group?: string;
}

export interface ScatterPlot {
  title: string;
  x: Axis;
  y: Axis;
  points: ScatterPoint[];
  width?: number;
  height?: number;
}

function axis(a: Axis, field: string) {
  return {
    field,
    type: 'quantitative' as const,
    title: a.title,
    scale: a.scale === 'log' ? { type: 'log' as const } : { type: 'linear' as const, zero: a.zero ?? false },
  };
}

/** Vega-lite spec: one line (with points) per series and a translucent band where low/high are given. */
export function linePlotSpec(p: LinePlot): TopLevelSpec {
  const values = p.series.flatMap((s) => s.points.map((pt) => ({ series: s.name, ...pt })));
  const color = { field: 'series', type: 'nominal' as const, title: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: p.title,
    width: p.width ?? 480,
    height: p.height ?? 300,
    background: 'white',
    data: { values },
    layer: [
      {
        mark: { type: 'area', opacity: 0.18 },
        transform: [{ filter: 'isValid(datum.low) && isValid(datum.high)' }],
        encoding: { x: axis(p.x, 'x'), y: { ...axis(p.y, 'low') }, y2: { field: 'high' }, color },
      },
      {
        mark: { type: 'line', point: true },
        encoding: { x: axis(p.x, 'x'), y: axis(p.y, 'y'), color },
      },
    ],
  } as TopLevelSpec;
}

/** Vega-lite spec: points coloured by group, with optional text labels. */
export function scatterPlotSpec(p: ScatterPlot): TopLevelSpec {
  const values = p.points.map((pt) => ({ group: pt.group ?? '', label: pt.label ?? '', x: pt.x, y: pt.y }));
  const grouped = p.points.some((pt) => pt.group !== undefined);
  const base = { x: axis(p.x, 'x'), y: axis(p.y, 'y') };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: p.title,
    width: p.width ?? 420,
    height: p.height ?? 320,
    background: 'white',
    data: { values },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 70 },
        encoding: grouped ? { ...base, color: { field: 'group', type: 'nominal', title: null } } : base,
      },
      {
        mark: { type: 'text', align: 'left', dx: 6, dy: -6, fontSize: 10 },
        encoding: { ...base, text: { field: 'label' } },
      },
    ],
  } as TopLevelSpec;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string, scale = 2): Uint8Array {
  const r = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true },
  });
  return r.render().asPng();
}

/** Writes `<base>.svg` and `<base>.png`; returns both paths. */
export async function savePlot(spec: TopLevelSpec, base: string): Promise<{ svg: string; png: string }> {
  const svg = await renderSvg(spec);
  writeFileAtomic(`${base}.svg`, svg);
  writeFileAtomic(`${base}.png`, svgToPng(svg));
  return { svg: `${base}.svg`, png: `${base}.png` };
}
