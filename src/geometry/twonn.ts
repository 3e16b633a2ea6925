/**
 * TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez, Laio, Sci. Rep. 7, 2017). μ_i = r_i2 / r_i1 follows a
 * Pareto law with CDF 1 − μ^(−d) on a locally uniform d-dimensional manifold, so −ln(1 − F) = d ln μ:
 *  - "fit" (DADApy's "base", the default): the slope through the origin of −ln(1 − i/N) against the sorted ln μ,
 *    keeping the smallest `fraction` of them (0.9 discards the top 10%; the targets keep the full N);
 *  - "ml": the maximum-likelihood form (N − 1)/Σ ln μ over every point.
 * A zero r1 (a duplicate point) makes μ infinite: remove exact duplicates first.
 */
import { TlabError } from '../util/errors.ts';
import type { NeighbourTable } from './neighbours.ts';

export type TwoNNAlgorithm = 'fit' | 'ml';

export interface TwoNNOptions {
  /** Fraction of the smallest μ kept by the fit. Default 0.9; 1 switches to "ml" (as DADApy does). */
  fraction?: number;
  algorithm?: TwoNNAlgorithm;
}

export interface TwoNNResult {
  /** The estimate of the chosen algorithm. */
  id: number;
  algorithm: TwoNNAlgorithm;
  /** Both forms, for reports. */
  fit: number;
  ml: number;
  n: number;
  /** μ values left out of the fit. */
  discarded: number;
  /** Mean of r1 and r2 over all points (the length scale the estimate refers to). */
  scale: number;
}

/** μ_i = r_i2 / r_i1 of every point; throws on duplicates. */
export function twoNNRatios(table: NeighbourTable, name = 'features'): Float64Array {
  if (table.maxk < 2)
    throw new TlabError(`${name}: TwoNN needs 2 neighbours per point, the table has ${table.maxk}`);
  const w = table.maxk + 1;
  const mu = new Float64Array(table.n);
  for (let i = 0; i < table.n; i++) {
    const r1 = table.distances[i * w + 1];
    const r2 = table.distances[i * w + 2];
    if (!(r1 > 0))
      throw new TlabError(
        `${name}: point ${i} has a neighbour at distance 0 (a duplicate row); TwoNN needs distinct points`,
        'remove exact duplicates first (removeDuplicates), as the geometry pipeline does',
      );
    mu[i] = r2 / r1;
  }
  return mu;
}

/** The fit and ML estimates from μ values. */
export function twoNNFromRatios(mu: Float64Array, fraction = 0.9): { fit: number; ml: number; kept: number } {
  const n = mu.length;
  const logs = Float64Array.from(mu, Math.log).sort();
  let total = 0;
  for (let i = 0; i < n; i++) total += logs[i];
  const ml = (n - 1) / total;
  const kept = Math.floor(n * fraction);
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < kept; i++) {
    const y = -Math.log(1 - (i + 1) / n);
    sxy += logs[i] * y;
    sxx += logs[i] * logs[i];
  }
  return { fit: sxy / sxx, ml, kept };
}

export function twoNN(table: NeighbourTable, options: TwoNNOptions = {}, name = 'features'): TwoNNResult {
  const fraction = options.fraction ?? 0.9;
  if (!(fraction > 0 && fraction <= 1)) throw new TlabError(`twonn: fraction ${fraction} must be in (0, 1]`);
  let algorithm = options.algorithm ?? 'fit';
  if (Math.abs(fraction - 1) < 1e-9 && algorithm === 'fit') algorithm = 'ml';
  if (table.n < 3) throw new TlabError(`${name}: TwoNN needs at least 3 points, got ${table.n}`);
  const mu = twoNNRatios(table, name);
  const { fit, ml, kept } = twoNNFromRatios(mu, fraction);
  if (algorithm === 'fit' && kept < 2)
    throw new TlabError(`${name}: the TwoNN fit keeps ${kept} of ${table.n} ratios; use more points`);
  const w = table.maxk + 1;
  let scale = 0;
  for (let i = 0; i < table.n; i++) scale += table.distances[i * w + 1] + table.distances[i * w + 2];
  return {
    id: algorithm === 'fit' ? fit : ml,
    algorithm,
    fit,
    ml,
    n: table.n,
    discarded: table.n - kept,
    scale: scale / (2 * table.n),
  };
}
