/**
 * Exact PCA from the eigendecomposition of the smaller Gram matrix: XcᵀXc (D×D) when N > D, XcXcᵀ (N×N)
 * otherwise. Component signs follow scikit-learn 1.2's svd_flip (the largest-magnitude score of each
 * component is positive), because PARC and diagonal GBC depend on them.
 */
import { TlabError } from '../util/errors.ts';
import { eighTopBy } from './eigh.ts';
import { centerColumns, columnMeans, type Matrix, matrix } from './matrix.ts';
import { gram, matmul, outerGram } from './products.ts';
import { withScratch } from './scratch.ts';

export interface PcaResult {
  /** Column means that were subtracted. */
  mean: Float64Array;
  /** D×k, orthonormal columns. */
  components: Matrix;
  /** Variance (divisor N-1) along each component, descending. */
  explainedVariance: Float64Array;
  /** Sum of the variances of all components. */
  totalVariance: number;
  /** N×k projections of the centred data. */
  scores: Matrix;
}

/** Number of components: a count, or the fraction of variance to keep (scikit-learn's 0 < n_components < 1). */
export type PcaSize = number | { varianceFraction: number };

function chooseK(size: PcaSize, variancesDesc: Float64Array, maxK: number): number {
  if (typeof size === 'number') {
    if (!Number.isInteger(size) || size < 1 || size > maxK)
      throw new TlabError(
        `pca: n_components=${size} must be an integer in [1, ${maxK}] (min of rows and columns)`,
      );
    return size;
  }
  const f = size.varianceFraction;
  if (!(f > 0 && f < 1)) throw new TlabError(`pca: varianceFraction=${f} must be in (0, 1)`);
  let total = 0;
  for (let i = 0; i < maxK; i++) total += Math.max(variancesDesc[i], 0);
  // smallest k whose cumulative ratio exceeds f (numpy searchsorted side='right' + 1)
  let cum = 0;
  for (let k = 0; k < maxK; k++) {
    cum += Math.max(variancesDesc[k], 0);
    if (cum / total > f) return k + 1;
  }
  return maxK;
}

export async function pca(x: Matrix, size: PcaSize): Promise<PcaResult> {
  const n = x.rows;
  const dim = x.cols;
  if (n < 2) throw new TlabError(`pca: needs at least 2 rows, got ${n}`);
  const mean = columnMeans(x);
  return withScratch(n * dim, (buf) => pcaCentred(centerColumns(x, mean, buf), mean, size));
}

/** PCA of the centred xc (a scratch buffer: nothing returned may alias it). */
async function pcaCentred(xc: Matrix, mean: Float64Array, size: PcaSize): Promise<PcaResult> {
  const n = xc.rows;
  const dim = xc.cols;
  const maxK = Math.min(n, dim);
  const denom = n - 1;
  let totalVariance = 0;
  let components: Matrix;
  let scores: Matrix;
  let explained: Float64Array;
  if (n > dim) {
    const g = await gram(xc);
    const eig = await eighTopBy(g, (desc) => {
      for (let i = 0; i < desc.length; i++) totalVariance += Math.max(desc[i], 0) / denom;
      return chooseK(size, desc, maxK);
    });
    components = eig.vectors;
    explained = eig.values.map((v) => Math.max(v, 0) / denom);
    scores = await matmul(xc, components);
  } else {
    const k0 = await outerGram(xc);
    const eig = await eighTopBy(k0, (desc) => {
      for (let i = 0; i < desc.length; i++) totalVariance += Math.max(desc[i], 0) / denom;
      return chooseK(size, desc, maxK);
    });
    const k = eig.values.length;
    explained = eig.values.map((v) => Math.max(v, 0) / denom);
    // v_i = Xcᵀ u_i / s_i, score_i = u_i s_i
    scores = matrix(n, k);
    const u = eig.vectors;
    const sv = eig.values.map((v) => Math.sqrt(Math.max(v, 0)));
    for (let i = 0; i < n; i++)
      for (let c = 0; c < k; c++) scores.data[i * k + c] = u.data[i * k + c] * sv[c];
    components = matrix(dim, k);
    for (let i = 0; i < n; i++) {
      const xr = i * dim;
      for (let c = 0; c < k; c++) {
        if (sv[c] === 0) continue;
        const w = u.data[i * k + c] / sv[c];
        for (let j = 0; j < dim; j++) components.data[j * k + c] += w * xc.data[xr + j];
      }
    }
  }
  flipSigns(components, scores);
  return { mean, components, explainedVariance: explained, totalVariance, scores };
}

/** svd_flip(u_based_decision=True): make each score column's largest-|.| entry positive. */
function flipSigns(components: Matrix, scores: Matrix): void {
  const k = scores.cols;
  for (let c = 0; c < k; c++) {
    let best = -1;
    let arg = 0;
    for (let i = 0; i < scores.rows; i++) {
      const a = Math.abs(scores.data[i * k + c]);
      if (a > best) {
        best = a;
        arg = i;
      }
    }
    if (scores.data[arg * k + c] < 0) {
      for (let i = 0; i < scores.rows; i++) scores.data[i * k + c] = -scores.data[i * k + c];
      for (let j = 0; j < components.rows; j++) components.data[j * k + c] = -components.data[j * k + c];
    }
  }
}
