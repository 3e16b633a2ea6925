/**
 * Small-n honesty for rank correlations: scores equal up to float noise are ties (LEEP gave three models −ln 8
 * each, ordered by differences of ~3e-8, and so τ = 1 with a [1, 1] interval), an exact permutation p-value for
 * Kendall's τ-b when there are few models, and a verdict on whether the correlation can mean anything.
 */
import { kendallTau } from './rank-correlation.ts';

/** Relative difference under which two estimator scores are the same score. */
export const DEFAULT_TIE_TOLERANCE = 1e-6;
/** Fewer models than this make a rank correlation uninformative whatever its value. */
export const MIN_INFORMATIVE_MODELS = 8;
/** Most models for the exact permutation test (9! = 362,880 orderings). */
export const MAX_EXACT_PERMUTATION_MODELS = 9;

/**
 * Scores within `relTol` of each other (|a − b| <= relTol · max(|a|, |b|), chained along the sorted values) replaced
 * by their group's mean, so rank statistics see them as ties. Returns the merged scores and the tied groups' sizes.
 */
export function mergeTies(
  x: ArrayLike<number>,
  relTol = DEFAULT_TIE_TOLERANCE,
): { values: Float64Array; groups: number[] } {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const values = Float64Array.from(x);
  const groups: number[] = [];
  let start = 0;
  for (let k = 1; k <= n; k++) {
    const a = x[order[k - 1]];
    const b = k < n ? x[order[k]] : Number.NaN;
    const same = k < n && Math.abs(b - a) <= relTol * Math.max(Math.abs(a), Math.abs(b));
    if (same) continue;
    if (k - start > 1) {
      let mean = 0;
      for (let j = start; j < k; j++) mean += x[order[j]];
      mean /= k - start;
      for (let j = start; j < k; j++) values[order[j]] = mean;
      groups.push(k - start);
    }
    start = k;
  }
  return { values, groups };
}

/** Calls `visit` with every permutation of [0, n) (Heap's algorithm, in place). */
function forEachPermutation(n: number, visit: (p: Int32Array) => void): void {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const c = new Int32Array(n);
  visit(p);
  let i = 1;
  while (i < n) {
    if (c[i] < i) {
      const j = i % 2 === 0 ? 0 : c[i];
      [p[j], p[i]] = [p[i], p[j]];
      visit(p);
      c[i]++;
      i = 1;
    } else {
      c[i] = 0;
      i++;
    }
  }
}

/**
 * Two-sided exact permutation p-value of Kendall's τ-b over all n! pairings of x with y (ties kept as they are,
 * which a normal approximation handles badly at small n), as scipy.stats.permutation_test defines it:
 * min(1, 2 · min(P(τ ≥ observed), P(τ ≤ observed))). Null for more than MAX_EXACT_PERMUTATION_MODELS models or
 * when τ-b is undefined (a constant side).
 */
export function kendallPermutationPValue(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  const n = x.length;
  if (n > MAX_EXACT_PERMUTATION_MODELS || n < 2) return null;
  const observed = kendallTau(x, y);
  if (!Number.isFinite(observed)) return null;
  const py = new Float64Array(n);
  let above = 0;
  let below = 0;
  let total = 0;
  // Slack so that orderings with the same τ-b in exact arithmetic count despite rounding (scipy's too).
  const slack = 1e-12 * Math.max(1, Math.abs(observed));
  forEachPermutation(n, (p) => {
    for (let i = 0; i < n; i++) py[i] = y[p[i]];
    const t = kendallTau(x, py);
    total++;
    if (t >= observed - slack) above++;
    if (t <= observed + slack) below++;
  });
  return Math.min(1, (2 * Math.min(above, below)) / total);
}

/** Whether a correlation over `models` models with this 95% interval can be read, in words. */
export function correlationReliability(models: number, ci95: readonly [number, number]): string {
  if (models < MIN_INFORMATIVE_MODELS)
    return `uninformative: ${models} models (at least ${MIN_INFORMATIVE_MODELS} are needed for a rank correlation to mean much)`;
  if (!(ci95[1] - ci95[0] <= 1)) return 'uninformative: the 95% interval of τ is wider than 1';
  return 'informative';
}
