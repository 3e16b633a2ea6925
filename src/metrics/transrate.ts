/**
 * TransRate (Huang et al., ICML 2022; spec §9), as the TLlib code computes it: features centred once with the
 * column means, R(Z) = ½ ln det(I + ZᵀZ/(n·ε)), TrR = R(F̄) − (1/C) Σ_c R(F̄_c) (unweighted class mean).
 * Each log-determinant uses the smaller Gram matrix (Sylvester: det(I + ZᵀZ/c) = det(I + ZZᵀ/c)) and a Cholesky
 * factorisation.
 */
import { choleskyBlocked, logdetCholesky } from '../linalg/cholesky.ts';
import { columnMeans, type Matrix, matrix } from '../linalg/matrix.ts';
import { gram, outerGram } from '../linalg/products.ts';
import { withScratch } from '../linalg/scratch.ts';
import { type CommonOptions, prepare } from './input.ts';

export interface TransRateOptions extends CommonOptions {
  /** Distortion ε. Default 1e-4. */
  eps?: number;
}

/** Coding rate R(Z, ε) = ½ ln det(I + ZᵀZ/(n ε)). */
export async function codingRate(z: Matrix, eps = 1e-4): Promise<number> {
  const g = z.rows >= z.cols ? await gram(z) : await outerGram(z);
  const scale = 1 / (z.rows * eps);
  const m = g.rows;
  const a = g.data;
  for (let i = 0; i < a.length; i++) a[i] *= scale;
  for (let i = 0; i < m; i++) a[i * m + i] += 1;
  return 0.5 * logdetCholesky(await choleskyBlocked(g));
}

export interface TransRateResult {
  score: number;
  rate: number;
  perClassRate: number[];
}

export async function transRateDetails(
  features: Matrix,
  labels: ArrayLike<number>,
  options: TransRateOptions = {},
): Promise<TransRateResult> {
  const { labels: enc } = prepare(features, labels, options);
  const eps = options.eps ?? 1e-4;
  // centre once, writing the rows grouped by class: each class is then a contiguous block (no row copies), and
  // R(F̄) does not depend on the row order
  const { rows: n, cols: d, data } = features;
  const mean = columnMeans(features);
  const start = new Int32Array(enc.numClasses + 1);
  for (let k = 0; k < enc.numClasses; k++) start[k + 1] = start[k] + enc.counts[k];
  const next = start.slice(0, enc.numClasses);
  return withScratch(n * d, async (z) => {
    for (let i = 0; i < n; i++) {
      const r = i * d;
      const o = next[enc.y[i]]++ * d;
      for (let j = 0; j < d; j++) z[o + j] = data[r + j] - mean[j];
    }
    const rate = await codingRate(matrix(n, d, z), eps);
    const perClassRate: number[] = [];
    for (let k = 0; k < enc.numClasses; k++) {
      const rows = enc.counts[k];
      perClassRate.push(await codingRate(matrix(rows, d, z.subarray(start[k] * d, start[k + 1] * d)), eps));
    }
    const classMean = perClassRate.reduce((s, r) => s + r, 0) / enc.numClasses;
    return { score: rate - classMean, rate, perClassRate };
  });
}

export async function transRate(
  features: Matrix,
  labels: ArrayLike<number>,
  options: TransRateOptions = {},
): Promise<number> {
  return (await transRateDetails(features, labels, options)).score;
}
