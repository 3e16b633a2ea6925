/**
 * Static plots: a small vega-lite spec builder for the two shapes the lab draws most (lines with error bands,
 * labelled scatter plots), rendered headless to SVG by vega and to PNG by resvg. Results are files, so plots
 * are reproducible and need no browser.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { type ScaleChoice, vegaScale } from './axis-scale.ts';
import { placePoints } from './scatter-layout.ts';
import { vegaTextWidth } from './text-width.ts';

// Headless vega has no canvas to measure text; without this it guesses widths far too wide (see text-width.ts).
// vega supports replacing textMetrics.width; its typings do not declare textMetrics.
(vega as unknown as { textMetrics: { width: typeof vegaTextWidth } }).textMetrics.width = vegaTextWidth;

export interface Axis {
  title: string;
  /** Default 'auto': log when every value on the axis is positive and they span 100× or more, else linear. */
  scale?: ScaleChoice;
  /** Take a linear axis to zero (vega-lite's default for quantitative axes). Default false. */
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

/** A quantitative position encoding of `field`, its scale fitted to `values` (the whole axis, all layers). */
function axis(a: Axis, field: string, values: readonly number[]) {
  return {
    field,
    type: 'quantitative' as const,
    title: a.title,
    scale: vegaScale(a.scale, values, a.zero ?? false),
  };
}

const LABEL_LINE = 12;

/**
 * Vega-lite spec: one line (with points) per series and a translucent band where low/high are given; legend
 * swatches are opaque.
 */
export function linePlotSpec(p: LinePlot): TopLevelSpec {
  const values = p.series.flatMap((s) => s.points.map((pt) => ({ series: s.name, ...pt })));
  const xs = values.map((v) => v.x);
  const ys = values.flatMap((v) => [v.y, v.low ?? Number.NaN, v.high ?? Number.NaN]);
  const x = axis(p.x, 'x', xs);
  const y = axis(p.y, 'y', ys);
  // The legend merges both layers' symbols; without symbolOpacity the band's 0.18 tints the swatches.
  const color = { field: 'series', type: 'nominal' as const, title: null, legend: { symbolOpacity: 1 } };
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
        encoding: { x, y: { ...y, field: 'low' }, y2: { field: 'high' }, color },
      },
      {
        mark: { type: 'line', point: true },
        encoding: { x, y, color },
      },
    ],
  } as TopLevelSpec;
}

/**
 * Vega-lite spec: points coloured by group, with optional text labels. Points that (nearly) coincide are spread
 * a little in x and their labels stacked (see scatter-layout.ts); the data and tooltips keep the exact values.
 */
export function scatterPlotSpec(p: ScatterPlot): TopLevelSpec {
  const xs = p.points.map((pt) => pt.x);
  const ys = p.points.map((pt) => pt.y);
  const x0 = vegaScale(p.x.scale, xs, p.x.zero ?? false);
  const y = axis(p.y, 'y', ys);
  const placed =
    x0.domain && y.scale.domain
      ? placePoints(
          xs,
          ys,
          { type: x0.type, domain: x0.domain },
          { type: y.scale.type, domain: y.scale.domain },
        )
      : p.points.map((pt) => ({ x: pt.x, stack: 0 }));
  const values = p.points.map((pt, i) => ({
    group: pt.group ?? '',
    label: pt.label ?? '',
    x: pt.x,
    y: pt.y,
    x_drawn: placed[i].x,
    stack: placed[i].stack,
  }));
  // The axis covers the drawn positions too (a spread cluster at an edge stays inside), of the type chosen
  // from the data.
  const x = axis({ ...p.x, scale: x0.type }, 'x_drawn', [...xs, ...placed.map((q) => q.x)]);
  const tooltip = [
    { field: 'label', type: 'nominal' as const, title: 'label' },
    { field: 'x', type: 'quantitative' as const, title: p.x.title },
    { field: 'y', type: 'quantitative' as const, title: p.y.title },
  ];
  const base = { x, y, tooltip };
  const levels = Math.max(0, ...values.filter((v) => v.label !== '').map((v) => v.stack + 1));
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
        encoding: grouped(p) ? { ...base, color: { field: 'group', type: 'nominal', title: null } } : base,
      },
      // one text layer per stack level: vega-lite cannot encode dy per datum
      ...Array.from({ length: levels }, (_, k) => ({
        transform: [{ filter: `datum.stack === ${k} && datum.label !== ''` }],
        mark: { type: 'text', align: 'left', dx: 6, dy: -6 - k * LABEL_LINE, fontSize: 10 },
        encoding: { ...base, text: { field: 'label' } },
      })),
    ],
  } as TopLevelSpec;
}

function grouped(p: ScatterPlot): boolean {
  return p.points.some((pt) => pt.group !== undefined);
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
