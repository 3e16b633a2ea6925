/**
 * GBC, Gaussian Bhattacharyya Coefficient (Pándy et al., CVPR 2022; spec §6): −Σ_{i≠j} exp(−D_B) between
 * per-class Gaussians fitted on PCA-reduced features. Defaults follow google-research: PCA to 64 dimensions,
 * spherical Gaussians, variances floored at 1e-4. For the spherical type the reference's log-det term is not
 * multiplied by the dimension; `textbookSpherical` multiplies it (the true Bhattacharyya distance).
 */
import type { Matrix } from '../linalg/matrix.ts';
import { pca } from '../linalg/pca.ts';
import { type CommonOptions, prepare } from './input.ts';

export interface GbcOptions extends CommonOptions {
  gaussian?: 'spherical' | 'diagonal';
  /** PCA dimensions (applied when D exceeds it); null disables PCA. Default 64. */
  pcaDims?: number | null;
  /** Variance floor. Default 1e-4. */
  varianceFloor?: number;
  textbookSpherical?: boolean;
}

/** Reduces features with exact PCA when D > dims (also capped at N − 1 components, the rank of centred data). */
export async function reduceFeatures(f: Matrix, dims: number | null | undefined): Promise<Matrix> {
  if (dims === null || dims === undefined || f.cols <= dims) return f;
  const k = Math.max(1, Math.min(dims, f.rows - 1));
  return (await pca(f, k)).scores;
}

export async function gbc(
  features: Matrix,
  labels: ArrayLike<number>,
  options: GbcOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const x = await reduceFeatures(features, options.pcaDims === undefined ? 64 : options.pcaDims);
  const c = enc.numClasses;
  const d = x.cols;
  const floor = options.varianceFloor ?? 1e-4;
  const spherical = (options.gaussian ?? 'spherical') === 'spherical';
  const mean = new Float64Array(c * d);
  const vari = new Float64Array(c * d);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < d; j++) mean[enc.y[i] * d + j] += x.data[i * d + j];
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) mean[k * d + j] /= enc.counts[k];
  for (let i = 0; i < x.rows; i++)
    for (let j = 0; j < d; j++) vari[enc.y[i] * d + j] += (x.data[i * d + j] - mean[enc.y[i] * d + j]) ** 2;
  for (let k = 0; k < c; k++)
    for (let j = 0; j < d; j++) vari[k * d + j] = Math.max(vari[k * d + j] / enc.counts[k], floor);
  if (spherical)
    for (let k = 0; k < c; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += vari[k * d + j];
      vari.fill(s / d, k * d, (k + 1) * d);
    }
  const logFactor = spherical && options.textbookSpherical ? d : 1;
  let total = 0;
  for (let a = 0; a < c; a++)
    for (let b = 0; b < c; b++) {
      if (a === b) continue;
      let quad = 0;
      let logs = 0;
      for (let j = 0; j < d; j++) {
        const va = vari[a * d + j];
        const vb = vari[b * d + j];
        const avg = (va + vb) / 2;
        quad += (mean[a * d + j] - mean[b * d + j]) ** 2 / avg;
        if (!spherical || j === 0) logs += Math.log(avg) - 0.5 * Math.log(va) - 0.5 * Math.log(vb);
      }
      const db = quad / 8 + 0.5 * logs * logFactor;
      total += Math.exp(-db);
    }
  return -total;
}
