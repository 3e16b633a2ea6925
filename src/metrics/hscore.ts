/**
 * H-score (Bao et al., ICIP 2019) and shrinkage H-score (Ibrahim et al., 2022); spec §5. Both are
 * tr(pinv(Σ) Cov(G)) where Cov(G) = Σ_c (n_c/(N−1)) m_c m_cᵀ has rank < C, so the trace is
 * Σ_c Σ_i (v_iᵀ m_c)² / λ_i: one eigendecomposition of the feature covariance (or of the N×N Gram when
 * N <= D) and the projections of the C centred class means.
 */
import { eighProject } from '../linalg/eigh.ts';
import { centerColumns, type Matrix, matrix } from '../linalg/matrix.ts';
import { gram, matmul, outerGram } from '../linalg/products.ts';
import { type CommonOptions, classSums, prepare } from './input.ts';

export interface HScoreOptions extends CommonOptions {
  /** pinv cut-off relative to the largest eigenvalue (numpy's rcond). Default 1e-15 as the reference. */
  rcond?: number;
}

interface Spectrum {
  /** Eigenvalues of XcᵀXc (the nonzero ones when computed from the N×N side). */
  values: Float64Array;
  /** (v_iᵀ m_c)² summed over classes with weight n_c/(N−1), per eigenvalue. */
  weightedSq: Float64Array;
  /** ‖XcᵀXc‖_F². */
  frob2: number;
  trace: number;
  xc: Matrix;
}

async function spectrum(features: Matrix, y: Int32Array, counts: Int32Array): Promise<Spectrum> {
  const xc = centerColumns(features);
  const n = xc.rows;
  const d = xc.cols;
  const c = counts.length;
  // class means of the centred features, scaled by sqrt(n_c/(N−1))
  const sums = classSums(xc, y, c);
  const m = matrix(d, c);
  for (let k = 0; k < c; k++) {
    const w = Math.sqrt(counts[k] / (n - 1)) / counts[k];
    for (let j = 0; j < d; j++) m.data[j * c + k] = sums[k * d + j] * w;
  }
  let values: Float64Array;
  let proj: Float64Array;
  let frob2 = 0;
  if (n > d) {
    const g = await gram(xc);
    for (let i = 0; i < g.data.length; i++) frob2 += g.data[i] ** 2;
    const r = eighProject(g, m);
    values = r.values;
    proj = r.projections.data;
  } else {
    // v_i = Xcᵀ u_i / sqrt(λ_i): project Xc m onto u_i, divide by sqrt(λ_i)
    const k = await outerGram(xc);
    for (let i = 0; i < k.data.length; i++) frob2 += k.data[i] ** 2;
    const xm = await matmul(xc, m);
    const r = eighProject(k, xm);
    values = r.values;
    proj = r.projections.data.slice();
    for (let i = 0; i < values.length; i++) {
      const s = values[i] > 0 ? 1 / Math.sqrt(values[i]) : 0;
      for (let q = 0; q < c; q++) proj[i * c + q] *= s;
    }
  }
  const weightedSq = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let s = 0;
    for (let q = 0; q < c; q++) s += proj[i * c + q] ** 2;
    weightedSq[i] = s;
  }
  let trace = 0;
  for (let i = 0; i < values.length; i++) trace += values[i];
  return { values, weightedSq, frob2, trace, xc };
}

/** Σ_i w_i / e_i over eigenvalues e_i that survive pinv's relative cut-off. */
function pinvTrace(eig: Float64Array, w: Float64Array, rcond: number): number {
  let max = 0;
  for (let i = 0; i < eig.length; i++) max = Math.max(max, Math.abs(eig[i]));
  const cut = rcond * max;
  let s = 0;
  for (let i = 0; i < eig.length; i++) if (Math.abs(eig[i]) > cut) s += w[i] / eig[i];
  return s;
}

/**
 * From the N×N side (N <= D) centring leaves one structurally zero eigenvalue whose rounding-level value and
 * projection would otherwise be inverted; a rank tolerance of N·ε removes it.
 */
function rcondFor(features: Matrix, options: HScoreOptions): number {
  const r = options.rcond ?? 1e-15;
  return features.rows <= features.cols ? Math.max(r, features.rows * 2 ** -52) : r;
}

/** H-score = tr(pinv(Cov F) Cov(E[F|y])), both with divisor N−1; in [0, min(D, C−1)]. */
export async function hScore(
  features: Matrix,
  labels: ArrayLike<number>,
  options: HScoreOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const sp = await spectrum(features, enc.y, enc.counts);
  const n = features.rows;
  const cov = sp.values.map((v) => v / (n - 1));
  return pinvTrace(cov, sp.weightedSq, rcondFor(features, options));
}

/** Ledoit-Wolf shrinkage intensity of centred X exactly as scikit-learn's ledoit_wolf_shrinkage. */
export function ledoitWolfShrinkage(
  n: number,
  d: number,
  frob2Gram: number,
  traceGram: number,
  xc: Matrix,
): number {
  if (d === 1) return 0;
  const traceS = traceGram / n;
  const mu = traceS / d;
  const delta_ = frob2Gram / (n * n); // ‖S‖_F²
  // Σ_{j,k} (X∘X)ᵀ(X∘X) = Σ_i ‖x_i‖⁴
  let beta_ = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += xc.data[i * d + j] ** 2;
    beta_ += s * s;
  }
  let beta = (beta_ / n - delta_) / (d * n);
  const delta = (delta_ - 2 * mu * traceS + d * mu * mu) / d;
  beta = Math.min(beta, delta);
  if (beta === 0 || delta === 0) return 0;
  return beta / delta;
}

export interface ShrinkageHScoreResult {
  score: number;
  shrinkage: number;
}

/** Shrinkage H-score: tr(pinv(Σ_α) (1−α) Cov(G)) with Σ_α the Ledoit-Wolf covariance (divisor N). */
export async function shrinkageHScoreDetails(
  features: Matrix,
  labels: ArrayLike<number>,
  options: HScoreOptions = {},
): Promise<ShrinkageHScoreResult> {
  const { labels: enc } = prepare(features, labels, options);
  const sp = await spectrum(features, enc.y, enc.counts);
  const n = features.rows;
  const d = features.cols;
  const alpha = ledoitWolfShrinkage(n, d, sp.frob2, sp.trace, sp.xc);
  const mu = sp.trace / n / d;
  const shrunk = sp.values.map((v) => (1 - alpha) * (v / n) + alpha * mu);
  // eigenvalues of Σ_α outside the span of the data are α·μ; the class means have no component there
  const allEig = shrunk.length < d ? Float64Array.of(...shrunk, alpha * mu) : shrunk;
  const w = sp.weightedSq.map((x) => (1 - alpha) * x);
  const wAll = shrunk.length < d ? Float64Array.of(...w, 0) : w;
  return { score: pinvTrace(allEig, wAll, rcondFor(features, options)), shrinkage: alpha };
}

export async function shrinkageHScore(
  features: Matrix,
  labels: ArrayLike<number>,
  options: HScoreOptions = {},
): Promise<number> {
  return (await shrinkageHScoreDetails(features, labels, options)).score;
}
