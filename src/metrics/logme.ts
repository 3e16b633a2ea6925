/**
 * LogME (You et al., ICML 2021 / JMLR 2022; spec §2): mean over classes of the per-sample maximum evidence of a
 * Bayesian linear regression of each one-hot column on the features. Everything comes from one
 * eigendecomposition of the smaller Gram matrix (FᵀF when N > D, FFᵀ otherwise) plus the projections of the
 * targets onto its eigenvectors, so U = F V / s is never formed.
 *
 * By default the log-determinant counts the D − k zero eigenvalues (spec §2.4); `thumlCompat` reproduces the
 * reference's inflated score when N <= D or F is rank-deficient.
 */
import { eighProject } from '../linalg/eigh.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import { gram, groupSums, matmulTransA, outerGram } from '../linalg/products.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, checkFeatures, prepare } from './input.ts';

export interface LogmeOptions extends CommonOptions {
  /** 'fixed-point' (thuml default, JMLR) or 'icml' (the older iteration). */
  variant?: 'fixed-point' | 'icml';
  /** Reproduce thuml's fixed-point evidence, which omits the zero eigenvalues from ln det A (PR #24). */
  thumlCompat?: boolean;
}

export interface LogmeTargetResult {
  evidence: number;
  alpha: number;
  beta: number;
  iterations: number;
}

export interface LogmeResult {
  score: number;
  perTarget: LogmeTargetResult[];
}

const EPSILON = 1e-5;
const LN_2PI = Math.log(2 * Math.PI);

/** The spectral quantities one target needs: eigenvalues σ and squared projections q = (vᵀFᵀt)². */
interface Spectrum {
  n: number;
  d: number;
  /** σ_i for the retained directions. */
  sigma: Float64Array;
  /** Number of directions the reference keeps (s > 1e-10 when N > D, all N otherwise). */
  k: number;
}

function fixedPoint(sp: Spectrum, q: Float64Array, tt: number, compat: boolean): LogmeTargetResult {
  const { n, d, sigma, k } = sp;
  let alpha = 1;
  let beta = 1;
  let m2 = 0;
  let res2 = 0;
  let iterations = 0;
  for (let it = 0; it < 11; it++) {
    iterations = it + 1;
    const tau = alpha / beta;
    let gamma = 0;
    m2 = 0;
    let fit = 0;
    for (let i = 0; i < k; i++) {
      const s = sigma[i];
      const den = s + tau;
      gamma += s / den;
      m2 += q[i] / (den * den);
      fit += (q[i] * (s + 2 * tau)) / (den * den);
    }
    res2 = tt - fit; // ‖Fm − t‖², written without 1/σ so tiny σ stay harmless
    alpha = gamma / (m2 + EPSILON);
    beta = (n - gamma) / (res2 + EPSILON);
    const tauNew = alpha / beta;
    if (Math.abs(tauNew - tau) / tau <= 1e-3) break;
  }
  let logdet = 0;
  for (let i = 0; i < k; i++) logdet += Math.log(alpha + beta * sigma[i]);
  if (!compat) logdet += (d - k) * Math.log(alpha);
  const evidence =
    (d / 2) * Math.log(alpha) +
    (n / 2) * Math.log(beta) -
    0.5 * logdet -
    (beta / 2) * res2 -
    (alpha / 2) * m2 -
    (n / 2) * LN_2PI;
  return { evidence: evidence / n, alpha, beta, iterations };
}

function icml(sp: Spectrum, q: Float64Array, tt: number): LogmeTargetResult {
  const { n, d, sigma } = sp;
  const m = sigma.length; // all eigenvalues; the D − m missing ones are zeros with zero projection
  let alpha = 1;
  let beta = 1;
  let lam = 1;
  let alphaDe = 0;
  let betaDe = 0;
  let iterations = 0;
  for (let it = 0; it < 11; it++) {
    iterations = it + 1;
    let gamma = 0;
    alphaDe = 0;
    let fit = 0;
    const tau = alpha / beta;
    for (let i = 0; i < m; i++) {
      const s = sigma[i];
      gamma += s / (s + lam);
      const den = s + tau;
      alphaDe += q[i] / (den * den);
      fit += (q[i] * (s + 2 * tau)) / (den * den);
    }
    betaDe = tt - fit;
    alpha = gamma / (alphaDe + EPSILON);
    beta = (n - gamma) / (betaDe + EPSILON);
    const lamNew = alpha / beta;
    if (Math.abs(lamNew - lam) / lam < 0.01) break;
    lam = lamNew;
  }
  let logdet = (d - m) * Math.log(alpha);
  for (let i = 0; i < m; i++) logdet += Math.log(alpha + beta * sigma[i]);
  const evidence =
    (d / 2) * Math.log(alpha) +
    (n / 2) * Math.log(beta) -
    0.5 * logdet -
    (beta / 2) * (betaDe + EPSILON) -
    (alpha / 2) * (alphaDe + EPSILON) -
    (n / 2) * LN_2PI;
  return { evidence: evidence / n, alpha, beta, iterations };
}

/**
 * LogME for real-valued targets Y (N×K; one-hot columns for classification). Returns the mean evidence and the
 * per-column results.
 */
export async function logmeTargets(
  features: Matrix,
  targets: Matrix,
  options: LogmeOptions = {},
): Promise<LogmeResult> {
  checkFeatures(features, options.names);
  if (targets.rows !== features.rows)
    throw new TlabError(
      `${options.names?.labels ?? 'targets'} has ${targets.rows} rows but ${options.names?.features ?? 'features'} has ${features.rows}`,
    );
  const n = features.rows;
  const kCols = targets.cols;
  const tt = new Float64Array(kCols);
  for (let i = 0; i < n; i++) for (let c = 0; c < kCols; c++) tt[c] += targets.data[i * kCols + c] ** 2;
  const b = await matmulTransA(features, targets); // Fᵀ Y
  return fromSpectrum(features, b, tt, targets, options);
}

async function fromSpectrum(
  f: Matrix,
  fty: Matrix,
  tt: Float64Array,
  y: Matrix | null,
  options: LogmeOptions,
): Promise<LogmeResult> {
  const n = f.rows;
  const d = f.cols;
  const kCols = fty.cols;
  const variant = options.variant ?? 'fixed-point';
  let sigmaAll: Float64Array;
  let qAll: Float64Array; // eigen-index-major, kCols per row
  if (n > d) {
    const g = await gram(f);
    const { values, projections } = await eighProject(g, fty);
    sigmaAll = values.map(Math.abs);
    qAll = projections.data.map((x) => x * x);
  } else {
    const kmat = await outerGram(f);
    const target = y ?? matrix(n, kCols);
    const { values, projections } = await eighProject(kmat, target);
    sigmaAll = values.map(Math.abs);
    qAll = new Float64Array(projections.data.length);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < kCols; c++)
        qAll[i * kCols + c] = sigmaAll[i] * projections.data[i * kCols + c] ** 2;
  }
  // Directions the reference keeps: s = sqrt(σ) > 1e-10 when N > D; all N otherwise.
  const keep: number[] = [];
  for (let i = 0; i < sigmaAll.length; i++) if (n <= d || Math.sqrt(sigmaAll[i]) > 1e-10) keep.push(i);
  const sigma = Float64Array.from(keep, (i) => sigmaAll[i]);
  const spec: Spectrum = { n, d, sigma, k: sigma.length };
  const perTarget: LogmeTargetResult[] = [];
  const q = new Float64Array(sigma.length);
  const qFull = new Float64Array(sigmaAll.length);
  for (let c = 0; c < kCols; c++) {
    for (let r = 0; r < keep.length; r++) q[r] = qAll[keep[r] * kCols + c];
    if (variant === 'icml') {
      for (let r = 0; r < sigmaAll.length; r++) qFull[r] = qAll[r * kCols + c];
      perTarget.push(icml({ n, d, sigma: sigmaAll, k: sigmaAll.length }, qFull, tt[c]));
    } else {
      perTarget.push(fixedPoint(spec, q, tt[c], options.thumlCompat ?? false));
    }
  }
  const score = perTarget.reduce((s, r) => s + r.evidence, 0) / kCols;
  return { score, perTarget };
}

/** LogME with per-class details (classification: one-hot targets of the encoded labels). */
export async function logmeDetails(
  features: Matrix,
  labels: ArrayLike<number>,
  options: LogmeOptions = {},
): Promise<LogmeResult> {
  const { labels: enc } = prepare(features, labels, options);
  const c = enc.numClasses;
  const n = features.rows;
  const d = features.cols;
  // Fᵀ onehot(y) is just the per-class sums.
  const sums = await groupSums(features, enc.y, c);
  const fty = matrix(d, c);
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) fty.data[j * c + k] = sums[k * d + j];
  const tt = Float64Array.from(enc.counts);
  let onehot: Matrix | null = null;
  if (n <= d) {
    onehot = matrix(n, c);
    for (let i = 0; i < n; i++) onehot.data[i * c + enc.y[i]] = 1;
  }
  return fromSpectrum(features, fty, tt, onehot, options);
}

/** LogME score (higher = better transfer). */
export async function logme(
  features: Matrix,
  labels: ArrayLike<number>,
  options: LogmeOptions = {},
): Promise<number> {
  return (await logmeDetails(features, labels, options)).score;
}
