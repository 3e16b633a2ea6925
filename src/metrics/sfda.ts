/**
 * SFDA, Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022; spec §10.1). The reference's
 * generalized eigenproblem reduces exactly to coef_c = Sw_λ⁻¹ μ_c, so each fit is one Cholesky solve.
 */
import { choleskyBlocked, solveLower, solveUpperT } from '../linalg/cholesky.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import { gram, matmul } from '../linalg/products.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, prepare } from './input.ts';

interface Fit {
  probs: Float64Array;
  lambda: number;
}

function classMeans(x: Matrix, y: Int32Array, counts: Int32Array): Float64Array {
  const c = counts.length;
  const { rows, cols: d, data } = x;
  const means = new Float64Array(c * d);
  for (let i = 0; i < rows; i++) {
    const r = i * d;
    const o = y[i] * d;
    for (let j = 0; j < d; j++) means[o + j] += data[r + j];
  }
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) means[k * d + j] /= counts[k];
  return means;
}

/**
 * One LDA fit. `scratch` (N×D) receives the within-class centred rows, so the two fits share one buffer.
 */
async function fit(
  x: Matrix,
  y: Int32Array,
  counts: Int32Array,
  scratch: Float64Array,
  lambdaIn?: number,
): Promise<Fit> {
  const n = x.rows;
  const d = x.cols;
  const c = counts.length;
  const means = classMeans(x, y, counts);
  // Sw = Σ_c π_c Cov_biased(X_c) = (1/N) XwᵀXw with Xw the rows minus their class mean (one large Gram)
  const X = x.data;
  for (let i = 0; i < n; i++) {
    const r = i * d;
    const o = y[i] * d;
    for (let j = 0; j < d; j++) scratch[r + j] = X[r + j] - means[o + j];
  }
  const sw = (await gram({ rows: n, cols: d, data: scratch })).data;
  for (let k = 0; k < sw.length; k++) sw[k] /= n;
  let lambda = lambdaIn;
  if (lambda === undefined) {
    // λmax(Sw) by the reference's power iteration: 3 rounds of two normalised half-steps
    const mul = (v: Float64Array) => {
      const out = new Float64Array(d);
      for (let a = 0; a < d; a++) {
        const r = a * d;
        let s = 0;
        for (let b = 0; b < d; b++) s += sw[r + b] * v[b];
        out[a] = s;
      }
      return out;
    };
    const normalize = (v: Float64Array) => {
      let ss = 0;
      for (let a = 0; a < d; a++) ss += v[a] * v[a];
      const nv = Math.sqrt(ss);
      return v.map((t) => t / nv);
    };
    let v = new Float64Array(d);
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) v[a] += sw[a * d + b];
    let u = v;
    for (let r = 0; r < 3; r++) {
      u = normalize(mul(v));
      v = normalize(mul(u));
    }
    const swv = mul(v);
    let lmax = 0;
    for (let a = 0; a < d; a++) lmax += u[a] * swv[a];
    lambda = Math.max(Math.exp(-5 * lmax), 1e-10);
  }
  let trace = 0;
  for (let a = 0; a < d; a++) trace += sw[a * d + a];
  if (!(trace > 0))
    throw new TlabError(
      'sfda: within-class scatter is zero (every class is a single point), so the LDA fit is undefined',
    );
  const shrunk = matrix(d, d);
  for (let i = 0; i < d * d; i++) shrunk.data[i] = (1 - lambda) * sw[i];
  for (let a = 0; a < d; a++) shrunk.data[a * d + a] += (lambda * trace) / d;
  const mt = matrix(d, c);
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) mt.data[j * c + k] = means[k * d + j];
  const l = await choleskyBlocked(shrunk);
  const coef = solveUpperT(l, solveLower(l, mt)); // d×c, column k = Sw_λ⁻¹ μ_k
  const bias = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += means[k * d + j] * coef.data[j * c + k];
    bias[k] = -0.5 * s + Math.log(counts[k] / n);
  }
  const probs = (await matmul(x, coef)).data; // N×C logits without the bias
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let k = 0; k < c; k++) {
      const s = probs[i * c + k] + bias[k];
      probs[i * c + k] = s;
      max = Math.max(max, s);
    }
    softmaxInPlace(probs, i * c, c, max);
  }
  return { probs, lambda };
}

function softmaxInPlace(p: Float64Array, off: number, c: number, max: number): void {
  let s = 0;
  for (let k = 0; k < c; k++) {
    p[off + k] = Math.exp(p[off + k] - max);
    s += p[off + k];
  }
  for (let k = 0; k < c; k++) p[off + k] /= s;
}

/** SFDA score = mean_i p₂(y_i | x_i) after ConfMix and a refit with the same λ; in (0, 1]. */
export async function sfda(
  features: Matrix,
  labels: ArrayLike<number>,
  options: CommonOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const { y, counts, numClasses: c } = enc;
  const d = features.cols;
  const scratch = new Float64Array(features.rows * d);
  const first = await fit(features, y, counts, scratch);
  const p = first.probs;
  // the reference softmaxes the probabilities a second time ("soften")
  for (let i = 0; i < features.rows; i++) {
    let max = -Infinity;
    for (let k = 0; k < c; k++) max = Math.max(max, p[i * c + k]);
    softmaxInPlace(p, i * c, c, max);
  }
  const means = classMeans(features, y, counts);
  const total = new Float64Array(d);
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) total[j] += means[k * d + j];
  const others = new Float64Array(c * d); // mean of the other classes' means
  for (let k = 0; k < c; k++)
    for (let j = 0; j < d; j++) others[k * d + j] = (total[j] - means[k * d + j]) / (c - 1);
  const mixed = matrix(features.rows, d);
  const F = features.data;
  const M = mixed.data;
  for (let i = 0; i < features.rows; i++) {
    const o = y[i] * d;
    const r = i * d;
    const pc = p[i * c + y[i]];
    for (let j = 0; j < d; j++) M[r + j] = pc * F[r + j] + (1 - pc) * others[o + j];
  }
  const second = await fit(mixed, y, counts, scratch, first.lambda);
  let s = 0;
  for (let i = 0; i < features.rows; i++) s += second.probs[i * c + y[i]];
  return s / features.rows;
}
