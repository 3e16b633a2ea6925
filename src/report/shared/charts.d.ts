/** Types of charts.js: vega-lite spec builders shared by the report and the dashboard. */
import type { TopLevelSpec } from 'vega-lite';

export interface HeatmapCell {
  row: string | number;
  col: string | number;
  value: number | null | undefined;
  low?: number | null;
  high?: number | null;
  n?: number | null;
  /** Shown instead of a value when there is none (skipped, error, ...). */
  status?: string;
  note?: string;
}

export interface HeatmapInput {
  title: string;
  rows: (string | number)[];
  cols: (string | number)[];
  cells: HeatmapCell[];
  rowTitle: string;
  colTitle: string;
  valueTitle: string;
  domain?: [number, number];
  /** Red–blue centred at 0 (deltas, gains) instead of sequential blues. */
  diverging?: boolean;
  digits?: number;
  clickable?: boolean;
  cellWidth?: number;
  cellHeight?: number;
}

export interface AxisInput {
  title: string;
  log?: boolean;
  zero?: boolean;
}

export interface LinesInput {
  title: string;
  x: AxisInput;
  y: AxisInput;
  legendTitle?: string;
  series: { name: string; points: { x: number; y: number; low?: number | null; high?: number | null }[] }[];
  width?: number;
  height?: number;
}

export interface CurvesInput {
  title: string;
  x: AxisInput;
  y: AxisInput;
  smoothing: number;
  series: { name: string; points: { x: number; y: number; smoothed: number; step: number }[] }[];
  width?: number;
  height?: number;
}

export interface EstimatorScatterInput {
  title: string;
  xTitle: string;
  yTitle: string;
  points: { model: string; score: number; std?: number; actual: number }[];
  width?: number;
  height?: number;
}

export interface ParallelInput {
  title: string;
  dimensions: string[];
  metricTitle: string;
  rows: { run: string; metric: number | null; values: Record<string, string | number | boolean | null> }[];
  width?: number;
  height?: number;
}

export function fmt(v: number | null | undefined, digits?: number): string;
export function heatmapSpec(p: HeatmapInput): TopLevelSpec;
export function linesSpec(p: LinesInput): TopLevelSpec;
export function curvesSpec(p: CurvesInput): TopLevelSpec;
export function estimatorScatterSpec(p: EstimatorScatterInput): TopLevelSpec;
export function parallelCoordinatesSpec(p: ParallelInput): TopLevelSpec;
