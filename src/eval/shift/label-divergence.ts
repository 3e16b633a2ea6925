/**
 * Label-distribution divergence of two tasks: class histograms with additive smoothing over the union of both
 * tasks' classes, p_c = (count_c + α) / (N + α·C), then
 *
 *   JS(P, Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M),  M = (P + Q)/2   (natural log, 0 ≤ JS ≤ ln 2)
 *   TV(P, Q) = ½ Σ_c |p_c − q_c|                              (0 ≤ TV ≤ 1)
 */
import { TlabError } from '../../util/errors.ts';

export interface LabelDivergenceResult {
  js: number;
  tv: number;
  /** The union of classes, sorted; p and q follow this order. */
  classes: string[];
  p: number[];
  q: number[];
  smoothing: number;
}

function histogram(labels: readonly string[], classes: string[], alpha: number): number[] {
  const counts = new Map(classes.map((c) => [c, 0]));
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const total = labels.length + alpha * classes.length;
  return classes.map((c) => ((counts.get(c) ?? 0) + alpha) / total);
}

function kl(p: number[], m: number[]): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) s += p[i] * Math.log(p[i] / m[i]);
  return s;
}

/** Labels as class names (numbers are compared by their decimal text). */
export function labelDivergence(
  a: readonly (string | number)[],
  b: readonly (string | number)[],
  smoothing = 1,
): LabelDivergenceResult {
  if (!(smoothing >= 0) || !Number.isFinite(smoothing))
    throw new TlabError(`label divergence: smoothing=${smoothing} must be a finite number ≥ 0`);
  if (a.length === 0 || b.length === 0)
    throw new TlabError(`label divergence: a label set is empty (${a.length} and ${b.length} labels)`);
  const sa = a.map(String);
  const sb = b.map(String);
  const classes = [...new Set([...sa, ...sb])].sort((x, y) => {
    const nx = Number(x);
    const ny = Number(y);
    return Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
  });
  const p = histogram(sa, classes, smoothing);
  const q = histogram(sb, classes, smoothing);
  const m = p.map((v, i) => 0.5 * (v + q[i]));
  // rounding can push JS a hair outside [0, ln 2]
  const js = Math.min(Math.LN2, Math.max(0, 0.5 * kl(p, m) + 0.5 * kl(q, m)));
  let tv = 0;
  for (let i = 0; i < p.length; i++) tv += Math.abs(p[i] - q[i]);
  return { js, tv: 0.5 * tv, classes, p, q, smoothing };
}
