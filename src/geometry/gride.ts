/**
 * GRIDE intrinsic dimension (Denti, Doimo, Laio, Mira, Sci. Rep. 12, 2022) as DADApy computes it: for ranks
 * n1 < n2, μ = r_{n2}/r_{n1} has density d (μ^d − 1)^(n2−n1−1) / (B(n2−n1, n1) μ^(d(n2−1)+1)); the estimate is the
 * root of the score, found by bisection on [0.001, 1000] to 1e-7, after nudging μ = 1 up and dropping outliers
 * (μ ≥ q50 + 20·(q95 − q50)). Multiscale: n1 = 1, 2, 4, ... with n2 = 2·n1, up to rank min(N, rangeMax). At
 * n1 = 1 it is TwoNN's maximum-likelihood estimate.
 */
import { TlabError } from '../util/errors.ts';
import type { NeighbourTable } from './neighbours.ts';

export interface GrideOptions {
  /** Largest neighbour rank used (DADApy's range_max). Default 64: scales n1 = 1..32. */
  rangeMax?: number;
  d0?: number;
  d1?: number;
  /** Bisection tolerance. Default 1e-7. */
  eps?: number;
}

export interface GrideScale {
  n1: number;
  n2: number;
  id: number;
  /** 1/√(Fisher information). */
  error: number;
  /** Mean of r_{n1} and r_{n2} over all points. */
  scale: number;
}

const F64_EPS = 2 ** -52;

/** numpy's percentile (linear interpolation) of sorted values. */
function percentileSorted(sorted: Float64Array, q: number): number {
  const pos = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** DADApy's _filter_mus: μ = 1 nudged up by 10 eps, then outliers dropped. Modifies `mu` in place (as numpy does). */
export function filterRatios(mu: Float64Array): Float64Array {
  for (let i = 0; i < mu.length; i++) if (mu[i] === 1) mu[i] += 10 * F64_EPS;
  const sorted = Float64Array.from(mu).sort();
  const q95 = percentileSorted(sorted, 95);
  const q50 = percentileSorted(sorted, 50);
  const max = 20 * (q95 - q50) + q50;
  return mu.filter((m) => m < max);
}

function negScore(d: number, logMu: Float64Array, n1: number, n2: number, eps: number): number {
  let s = 0;
  const c = 1 - n2 + n1;
  for (let i = 0; i < logMu.length; i++) {
    let one = 1 - Math.exp(-d * logMu[i]); // μ^(−d), through exp (V8's pow is several times slower)
    if (one < 2 * eps) one = 2 * eps;
    s += (c / one + n2 - 1) * logMu[i];
  }
  return s - (logMu.length - 1) / d;
}

function fisherInformation(d: number, mu: Float64Array, n1: number, n2: number, eps: number): number {
  let j1 = 0;
  for (let i = 0; i < mu.length; i++) {
    const pow = mu[i] ** -d;
    let one = 1 - pow;
    if (one < eps) one = eps;
    const f = Math.log(mu[i]) / one;
    j1 += (n2 - n1 - 1) * f * f * pow;
  }
  return mu.length / (d * d) + j1;
}

/** GRIDE at one scale from the ratios μ = r_{n2}/r_{n1}. */
export function grideFromRatios(
  ratios: Float64Array,
  n1: number,
  n2: number,
  options: GrideOptions = {},
): { id: number; error: number } {
  const eps = options.eps ?? 1e-7;
  let d0 = options.d0 ?? 0.001;
  let d1 = options.d1 ?? 1000;
  const all = ratios; // filterRatios nudges these in place, as DADApy's Fisher information sees them
  const kept = filterRatios(all);
  const logMu = Float64Array.from(kept, Math.log);
  const l1 = negScore(d1, logMu, n1, n2, eps);
  while (Math.abs(d0 - d1) > eps) {
    const m = (d0 + d1) / 2;
    const l2 = negScore(m, logMu, n1, n2, eps);
    if (l2 * l1 > 0) d1 = m;
    else d0 = m;
  }
  const id = (d0 + d1) / 2;
  const error = 1 / Math.sqrt(fisherInformation(id, all, n1, n2, 5 * F64_EPS));
  return { id, error };
}

/** Ranks 1, 2, 4, ..., 2^L with 2^L ≤ min(N, rangeMax): the scales GRIDE can use. */
export function grideRanks(n: number, rangeMax: number): number[] {
  const top = Math.min(n, rangeMax);
  const steps = Math.floor(Math.log2(top) + 1e-12);
  return Array.from({ length: steps + 1 }, (_, i) => 2 ** i);
}

/** GRIDE at doubling scales n1 = 1, 2, 4, ... (n2 = 2·n1). */
export function grideMultiscale(
  table: NeighbourTable,
  options: GrideOptions = {},
  name = 'features',
): GrideScale[] {
  const rangeMax = options.rangeMax ?? 64;
  if (!Number.isInteger(rangeMax) || rangeMax < 2)
    throw new TlabError(`gride: rangeMax ${rangeMax} must be an integer >= 2`);
  const ranks = grideRanks(table.n, rangeMax);
  const top = ranks[ranks.length - 1];
  if (top > table.maxk)
    throw new TlabError(
      `${name}: GRIDE up to rank ${top} needs ${top} neighbours per point, the table has ${table.maxk}`,
      'compute the neighbour table with maxk >= rangeMax',
    );
  const w = table.maxk + 1;
  const out: GrideScale[] = [];
  for (let s = 0; s + 1 < ranks.length; s++) {
    const n1 = ranks[s];
    const n2 = ranks[s + 1];
    const mu = new Float64Array(table.n);
    let scale = 0;
    for (let i = 0; i < table.n; i++) {
      const a = table.distances[i * w + n1];
      const b = table.distances[i * w + n2];
      if (!(a > 0))
        throw new TlabError(
          `${name}: point ${i} has its ${n1}-th neighbour at distance 0 (duplicate rows); GRIDE needs distinct points`,
          'remove exact duplicates first (removeDuplicates)',
        );
      mu[i] = b / a;
      scale += a + b;
    }
    const { id, error } = grideFromRatios(mu, n1, n2, options);
    out.push({ n1, n2, id, error, scale: scale / (2 * table.n) });
  }
  return out;
}

/** The estimate at scale n1 (the geometry pipeline uses n1 = 16, matching the density's k). */
export function grideAt(scales: readonly GrideScale[], n1: number): GrideScale {
  const s = scales.find((x) => x.n1 === n1);
  if (!s)
    throw new TlabError(
      `gride: no estimate at n1=${n1}; available scales n1 = ${scales.map((x) => x.n1).join(', ')}`,
      'raise rangeMax (and the neighbour count) to at least 2·n1',
    );
  return s;
}
