/**
 * Fréchet distance between Gaussians fitted to two feature sets (the FID formula):
 *
 *   FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2})
 *
 * with unbiased covariances (divisor n − 1, as np.cov). Tr((Σ₁Σ₂)^{1/2}) = Σ √λ_i(√Σ₁ Σ₂ √Σ₁): √Σ₁ comes from a
 * symmetric eigendecomposition (negative rounding-level eigenvalues clamped to 0), and √Σ₁ Σ₂ √Σ₁ is symmetric
 * positive semi-definite, so its eigenvalues are real (clamped at 0 too). Optionally both sets are first
 * projected onto the top k principal components of the pooled sample. With fewer rows than dimensions the
 * covariances are singular and FD is strongly biased: a warning says so.
 */
import { eigh, eigvalsh } from '../../linalg/eigh.ts';
import { centerColumns, columnMeans, type Matrix, matrix, selectRows } from '../../linalg/matrix.ts';
import { pca } from '../../linalg/pca.ts';
import { gram, matmul, outerGram } from '../../linalg/products.ts';
import { TlabError } from '../../util/errors.ts';
import { checkPair } from './samples.ts';

export interface FrechetOptions {
  /** Project onto this many principal components of the pooled sample first; null/undefined: no projection. */
  pcaDims?: number | null;
}

export interface FrechetResult {
  distance: number;
  /** ‖μ₁ − μ₂‖². */
  meanTerm: number;
  /** Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2}). */
  covarianceTerm: number;
  /** Dimensions the Gaussians live in (k with PCA). */
  dims: number;
  n1: number;
  n2: number;
  /** Fraction of the pooled variance the PCA kept (null without PCA). */
  explainedVariance: number | null;
  warning?: string;
}

async function covariance(x: Matrix, mean: Float64Array): Promise<Matrix> {
  const g = await gram(centerColumns(x, mean));
  const s = 1 / (x.rows - 1);
  for (let i = 0; i < g.data.length; i++) g.data[i] *= s;
  return g;
}

/** √S of a symmetric positive semi-definite S, as W Wᵀ with W = V diag(λ^{1/4}) (one symmetric product). */
async function sqrtPsd(s: Matrix): Promise<Matrix> {
  const { values, vectors: v } = await eigh(s);
  const d = s.rows;
  const w = matrix(d, d);
  for (let k = 0; k < d; k++) {
    const f = Math.sqrt(Math.sqrt(Math.max(values[k], 0)));
    for (let i = 0; i < d; i++) w.data[i * d + k] = v.data[i * d + k] * f;
  }
  return outerGram(w);
}

function trace(m: Matrix): number {
  let t = 0;
  for (let i = 0; i < m.rows; i++) t += m.data[i * m.cols + i];
  return t;
}

export async function frechetDistance(
  x: Matrix,
  y: Matrix,
  options: FrechetOptions = {},
): Promise<FrechetResult> {
  const what = 'Fréchet distance';
  checkPair(what, x, y, 2);
  let a = x;
  let b = y;
  let explainedVariance: number | null = null;
  const k = options.pcaDims ?? null;
  if (k !== null) {
    const maxK = Math.min(x.rows + y.rows, x.cols);
    if (!Number.isInteger(k) || k < 1 || k > maxK)
      throw new TlabError(
        `${what}: pca_dims=${k} must be an integer in [1, ${maxK}] (min of pooled rows and columns)`,
      );
    const pooled = matrix(x.rows + y.rows, x.cols);
    pooled.data.set(x.data, 0);
    pooled.data.set(y.data, x.data.length);
    const p = await pca(pooled, k);
    explainedVariance = p.explainedVariance.reduce((s, v) => s + v, 0) / p.totalVariance;
    a = selectRows(
      p.scores,
      Array.from({ length: x.rows }, (_, i) => i),
    );
    b = selectRows(
      p.scores,
      Array.from({ length: y.rows }, (_, i) => x.rows + i),
    );
  }
  const d = a.cols;
  const mu1 = columnMeans(a);
  const mu2 = columnMeans(b);
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (mu1[j] - mu2[j]) ** 2;
  const s1 = await covariance(a, mu1);
  const s2 = await covariance(b, mu2);
  const r1 = await sqrtPsd(s1);
  const inner = await matmul(await matmul(r1, s2), r1);
  // symmetrise away the products' rounding before the symmetric eigensolver
  for (let i = 0; i < d; i++)
    for (let j = 0; j < i; j++) {
      const v = 0.5 * (inner.data[i * d + j] + inner.data[j * d + i]);
      inner.data[i * d + j] = v;
      inner.data[j * d + i] = v;
    }
  let sqrtTrace = 0;
  for (const l of await eigvalsh(inner)) sqrtTrace += Math.sqrt(Math.max(l, 0));
  const covarianceTerm = trace(s1) + trace(s2) - 2 * sqrtTrace;
  const result: FrechetResult = {
    // FD ≥ 0; a negative value is rounding (identical sets)
    distance: Math.max(0, meanTerm + covarianceTerm),
    meanTerm,
    covarianceTerm,
    dims: d,
    n1: a.rows,
    n2: b.rows,
    explainedVariance,
  };
  if (Math.min(a.rows, b.rows) < d)
    result.warning = `${Math.min(a.rows, b.rows)} rows in a set but ${d} dimensions: the covariances are singular and the distance is strongly biased; project with PCA to fewer dimensions than rows`;
  return result;
}
