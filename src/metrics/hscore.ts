/**
 * H-score (Bao et al., ICIP 2019) and shrinkage H-score (Ibrahim et al., 2022); spec §5. Both are
 * tr(pinv(Σ) Cov(G)) where Cov(G) = Σ_c (n_c/(N−1)) m_c m_cᵀ = M Mᵀ has rank < C, so the trace is
 * Σ_c m_cᵀ pinv(Σ) m_c. When N > D and Σ is well-conditioned (pinv = inverse) that is ‖L⁻¹M‖² with Σ = L Lᵀ:
 * one Cholesky factorisation and C triangular solves. Otherwise (N <= D, singular or ill-conditioned Σ, or
 * `method: 'eigen'`) it is Σ_c Σ_i (v_iᵀ m_c)² / λ_i over the eigenvalues pinv keeps: one eigendecomposition of
 * the feature covariance (or of the N×N Gram when N <= D) and the projections of the C centred class means.
 */
import { choleskyBlocked, solveLower, solveUpperT } from '../linalg/cholesky.ts';
import { dot } from '../linalg/dot.ts';
import { eighProject } from '../linalg/eigh.ts';
import { centerColumns, type Matrix, matrix } from '../linalg/matrix.ts';
import { gram, matmul, outerGram } from '../linalg/products.ts';
import { withScratch } from '../linalg/scratch.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, classSums, prepare } from './input.ts';

export interface HScoreOptions extends CommonOptions {
  /** pinv cut-off relative to the largest eigenvalue (numpy's rcond). Default 1e-15 as the reference. */
  rcond?: number;
  /** 'eigen' always takes the eigendecomposition; 'auto' (default) solves by Cholesky when that is exact. */
  method?: 'auto' | 'eigen';
}

interface Parts {
  xc: Matrix;
  /** Centred class means scaled by sqrt(n_c/(N−1)), D×C: Cov(E[F|y]) = M Mᵀ. */
  m: Matrix;
  /** XcᵀXc (D×D) when N > D, else XcXcᵀ (N×N). */
  g: Matrix;
  /** ‖XcᵀXc‖_F² (equal on both sides). */
  frob2: number;
  trace: number;
}

/** `buf` (N×D scratch) receives the centred features; Parts.xc is a view of it. */
async function parts(features: Matrix, y: Int32Array, counts: Int32Array, buf: Float64Array): Promise<Parts> {
  const xc = centerColumns(features, undefined, buf);
  const n = xc.rows;
  const d = xc.cols;
  const c = counts.length;
  const sums = classSums(xc, y, c);
  const m = matrix(d, c);
  for (let k = 0; k < c; k++) {
    const w = Math.sqrt(counts[k] / (n - 1)) / counts[k];
    for (let j = 0; j < d; j++) m.data[j * c + k] = sums[k * d + j] * w;
  }
  const g = n > d ? await gram(xc) : await outerGram(xc);
  let frob2 = 0;
  for (let i = 0; i < g.data.length; i++) frob2 += g.data[i] ** 2;
  let trace = 0;
  for (let i = 0; i < g.rows; i++) trace += g.data[i * g.rows + i];
  return { xc, m, g, frob2, trace };
}

interface Spectrum {
  /** Eigenvalues of XcᵀXc (the nonzero ones when computed from the N×N side). */
  values: Float64Array;
  /** (v_iᵀ m_c)² summed over classes, per eigenvalue. */
  weightedSq: Float64Array;
}

async function spectrum(p: Parts): Promise<Spectrum> {
  const { xc, m, g } = p;
  const c = m.cols;
  let values: Float64Array;
  let proj: Float64Array;
  if (xc.rows > xc.cols) {
    const r = await eighProject(g, m);
    values = r.values;
    proj = r.projections.data;
  } else {
    // v_i = Xcᵀ u_i / sqrt(λ_i): project Xc m onto u_i, divide by sqrt(λ_i)
    const xm = await matmul(xc, m);
    const r = await eighProject(g, xm);
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
  return { values, weightedSq };
}

/**
 * Σ_c m_cᵀ A⁻¹ m_c = ‖L⁻¹ M‖_F² for A = scale·G + shift·I, by Cholesky. This equals the pinv trace when pinv
 * cuts no eigenvalue, so it returns null (the caller then takes the eigendecomposition) when A is not positive
 * definite or when inverse iteration puts λmin(A) within `minRatio`·tr(A) of zero — far above pinv's cut-off,
 * and where a solve would also lose more than ~1e-9 of relative accuracy.
 */
async function traceBySolve(
  g: Matrix,
  scale: number,
  shift: number,
  m: Matrix,
  minRatio: number,
): Promise<number | null> {
  const d = g.rows;
  const a = matrix(d, d);
  let trace = 0;
  for (let i = 0; i < d * d; i++) a.data[i] = scale * g.data[i];
  for (let i = 0; i < d; i++) {
    a.data[i * d + i] += shift;
    trace += a.data[i * d + i];
  }
  let l: Matrix;
  try {
    l = await choleskyBlocked(a);
  } catch (error) {
    if (error instanceof TlabError) return null;
    throw error;
  }
  let x = matrix(d, 1);
  for (let i = 0; i < d; i++) x.data[i] = 1 + 0.5 * Math.sin(1.7 * i + 0.3); // fixed start: reproducible
  let lambdaMin = Infinity;
  for (let it = 0; it < 4; it++) {
    let norm = 0;
    for (let i = 0; i < d; i++) norm += x.data[i] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < d; i++) x.data[i] /= norm;
    x = solveUpperT(l, solveLower(l, x));
    let ny = 0;
    for (let i = 0; i < d; i++) ny += x.data[i] ** 2;
    lambdaMin = 1 / Math.sqrt(ny); // ≥ λmin, converging to it
  }
  if (!(lambdaMin > minRatio * trace)) return null;
  const z = solveLower(l, m);
  let s = 0;
  for (let i = 0; i < z.data.length; i++) s += z.data[i] ** 2;
  return s;
}

/** The solve path stands in for pinv only far from its cut-off: λmin above this fraction of the trace. */
function solveRatio(options: HScoreOptions): number {
  return Math.max(1e-9, 1e3 * (options.rcond ?? 1e-15));
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

/**
 * H-score = tr(pinv(Cov F) Cov(E[F|y])), both with divisor N−1; in [0, min(D, C−1)]. With N > D and a
 * well-conditioned covariance this is C solves against a Cholesky factor; otherwise the eigendecomposition.
 */
export async function hScore(
  features: Matrix,
  labels: ArrayLike<number>,
  options: HScoreOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const n = features.rows;
  return withScratch(n * features.cols, async (buf) => {
    const p = await parts(features, enc.y, enc.counts, buf);
    if (n > features.cols && options.method !== 'eigen') {
      const s = await traceBySolve(p.g, 1 / (n - 1), 0, p.m, solveRatio(options));
      if (s !== null) return s;
    }
    const sp = await spectrum(p);
    const cov = sp.values.map((v) => v / (n - 1));
    return pinvTrace(cov, sp.weightedSq, rcondFor(features, options));
  });
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
    const s = dot(xc.data, i * d, xc.data, i * d, d);
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
  const n = features.rows;
  const d = features.cols;
  return withScratch(n * d, async (buf) => {
    const p = await parts(features, enc.y, enc.counts, buf);
    const alpha = ledoitWolfShrinkage(n, d, p.frob2, p.trace, p.xc);
    const mu = p.trace / n / d;
    if (n > d && options.method !== 'eigen') {
      // Σ_α = (1−α) G/N + α μ I is positive definite whenever α > 0
      const s = await traceBySolve(p.g, (1 - alpha) / n, alpha * mu, p.m, solveRatio(options));
      if (s !== null) return { score: (1 - alpha) * s, shrinkage: alpha };
    }
    const sp = await spectrum(p);
    const shrunk = sp.values.map((v) => (1 - alpha) * (v / n) + alpha * mu);
    // eigenvalues of Σ_α outside the span of the data are α·μ; the class means have no component there
    const allEig = shrunk.length < d ? Float64Array.of(...shrunk, alpha * mu) : shrunk;
    const w = sp.weightedSq.map((x) => (1 - alpha) * x);
    const wAll = shrunk.length < d ? Float64Array.of(...w, 0) : w;
    return { score: pinvTrace(allEig, wAll, rcondFor(features, options)), shrinkage: alpha };
  });
}

export async function shrinkageHScore(
  features: Matrix,
  labels: ArrayLike<number>,
  options: HScoreOptions = {},
): Promise<number> {
  return (await shrinkageHScoreDetails(features, labels, options)).score;
}
