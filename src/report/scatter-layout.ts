/**
 * Overlapping scatter points made readable: points within CLUSTER_FRACTION of each axis's span of one another
 * form a cluster; each member is drawn offset in x by its index in the cluster (deterministic, no randomness)
 * and its label raised one line per index, so identical points neither hide each other nor overprint labels.
 */
import { shiftInAxis, toAxisSpace } from './axis-scale.ts';

/** Points closer than this share of an axis (on both axes) are a cluster. */
export const CLUSTER_FRACTION = 0.01;
/** x offset between neighbours of a cluster, as a share of the x axis: about the width of a point. */
export const JITTER_FRACTION = 0.015;

export interface AxisFrame {
  type: 'linear' | 'log';
  domain: [number, number];
}

export interface Placement {
  /** Where the point is drawn in x (y is drawn where it is). */
  x: number;
  /** Index within its cluster (0 when alone): the label is raised by this many lines. */
  stack: number;
}

/** Cluster of each point (transitive closeness), by union-find; clusters are numbered by their first point. */
function clusters(
  xs: readonly number[],
  ys: readonly number[],
  xAxis: AxisFrame,
  yAxis: AxisFrame,
): number[] {
  const span = (a: AxisFrame) => toAxisSpace(a.domain[1], a.type) - toAxisSpace(a.domain[0], a.type);
  const ax = xs.map((v) => toAxisSpace(v, xAxis.type));
  const ay = ys.map((v) => toAxisSpace(v, yAxis.type));
  const tx = CLUSTER_FRACTION * span(xAxis);
  const ty = CLUSTER_FRACTION * span(yAxis);
  const parent = xs.map((_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (let i = 0; i < xs.length; i++)
    for (let j = i + 1; j < xs.length; j++)
      if (Math.abs(ax[i] - ax[j]) <= tx && Math.abs(ay[i] - ay[j]) <= ty) {
        const [a, b] = [root(i), root(j)];
        // the smaller index is the root, so members keep their input order within a cluster
        parent[Math.max(a, b)] = Math.min(a, b);
      }
  return xs.map((_, i) => root(i));
}

/** Drawing positions for points at (xs[i], ys[i]) on the given axes. */
export function placePoints(
  xs: readonly number[],
  ys: readonly number[],
  xAxis: AxisFrame,
  yAxis: AxisFrame,
): Placement[] {
  const of = clusters(xs, ys, xAxis, yAxis);
  const size = new Map<number, number>();
  for (const c of of) size.set(c, (size.get(c) ?? 0) + 1);
  const seen = new Map<number, number>();
  return xs.map((x, i) => {
    const k = seen.get(of[i]) ?? 0;
    seen.set(of[i], k + 1);
    const n = size.get(of[i]) ?? 1;
    if (n === 1) return { x, stack: 0 };
    // centred on the cluster: offsets −1, 0, +1 for three points
    return { x: shiftInAxis(x, (k - (n - 1) / 2) * JITTER_FRACTION, xAxis.domain, xAxis.type), stack: k };
  });
}
