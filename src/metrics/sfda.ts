/**
 * SFDA, Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022; spec §10.1). The reference's
 * generalized eigenproblem reduces exactly to coef_c = Sw_λ⁻¹ μ_c, so each fit is one Cholesky solve.
 */
import { choleskyBlocked, solveCholesky } from '../linalg/cholesky.ts';
import { dot, subtractInto } from '../linalg/dot.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import { gram, groupSums, matmul } from '../linalg/products.ts';
import { withScratch } from '../linalg/scratch.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, prepare } from './input.ts';

interface Fit {
  probs: Float64Array;
  lambda: number;
}

/**
 * The rows an LDA fit sees: the features, or SFDA's ConfMix rows x_i = w_i f_i + (1 − w_i) o_{y_i} (o_c the mean
 * of the other classes' means). The mixed rows are never stored: their class means, their within-class
 * centring and their logits all follow from F, w and o.
 */
interface Rows {
  f: Matrix;
  w?: Float64Array;
  others?: Float64Array;
}

/** Class means of the rows: Σ w_i f_i from one product, plus the others' share (n_c − Σ w_i) o_c. */
async function classMeans(rows: Rows, y: Int32Array, counts: Int32Array): Promise<Float64Array> {
  const c = counts.length;
  const d = rows.f.cols;
  const { w, others } = rows;
  const means = await groupSums(rows.f, y, c, w);
  const weight = new Float64Array(c); // Σ w_i over the class
  if (w) for (let i = 0; i < y.length; i++) weight[y[i]] += w[i];
  for (let k = 0; k < c; k++)
    for (let j = 0; j < d; j++) {
      const rest = others ? (counts[k] - weight[k]) * others[k * d + j] : 0;
      means[k * d + j] = (means[k * d + j] + rest) / counts[k];
    }
  return means;
}

/** λmax of the row-major d×d symmetric s by the reference's power iteration: 3 rounds of two normalised steps. */
function powerLambdaMax(s: Float64Array, d: number): number {
  const mul = (v: Float64Array): Float64Array => {
    const out = new Float64Array(d);
    for (let a = 0; a < d; a++) out[a] = dot(s, a * d, v, 0, d);
    return out;
  };
  const normalize = (v: Float64Array): Float64Array => {
    let ss = 0;
    for (let a = 0; a < d; a++) ss += v[a] * v[a];
    const nv = Math.sqrt(ss);
    for (let a = 0; a < d; a++) v[a] /= nv;
    return v;
  };
  let v: Float64Array = mul(new Float64Array(d).fill(1)); // the row sums
  let u = v;
  for (let r = 0; r < 3; r++) {
    u = normalize(mul(v));
    v = normalize(mul(u));
  }
  const sv = mul(v);
  let lmax = 0;
  for (let a = 0; a < d; a++) lmax += u[a] * sv[a];
  return lmax;
}

// Row helpers (called once per row, so they are optimised within the first call's first few hundred rows).

/** out[r..] = w_i (f_i − o_c) + (o_c − μ_c): a ConfMix row minus its class mean. */
function mixedResidualRow(
  F: Float64Array,
  r: number,
  wi: number,
  others: Float64Array,
  shift: Float64Array,
  o: number,
  d: number,
  out: Float64Array,
): void {
  for (let j = 0; j < d; j++) out[r + j] = wi * (F[r + j] - others[o + j]) + shift[o + j];
}

/** One LDA fit. `scratch` (N×D) receives the within-class centred rows; the two fits share it. */
async function fit(
  rows: Rows,
  y: Int32Array,
  counts: Int32Array,
  scratch: Float64Array,
  lambdaIn?: number,
): Promise<Fit & { means: Float64Array }> {
  const { rows: n, cols: d, data: F } = rows.f;
  const { w, others } = rows;
  const c = counts.length;
  const means = await classMeans(rows, y, counts);
  // Sw = Σ_c π_c Cov_biased(X_c) = (1/N) XwᵀXw with Xw the rows minus their class mean (one large Gram). Mixed
  // rows minus their class mean are w_i (f_i − o_c) + (o_c − μ_c).
  if (w && others) {
    const shift = new Float64Array(c * d); // o_c − μ_c
    for (let q = 0; q < c * d; q++) shift[q] = others[q] - means[q];
    for (let i = 0; i < n; i++) mixedResidualRow(F, i * d, w[i], others, shift, y[i] * d, d, scratch);
  } else for (let i = 0; i < n; i++) subtractInto(scratch, i * d, F, i * d, means, y[i] * d, d);
  const sw = (await gram(matrix(n, d, scratch))).data;
  for (let k = 0; k < sw.length; k++) sw[k] /= n;
  const lambda = lambdaIn ?? Math.max(Math.exp(-5 * powerLambdaMax(sw, d)), 1e-10);
  let trace = 0;
  for (let a = 0; a < d; a++) trace += sw[a * d + a];
  if (!(trace > 0))
    throw new TlabError(
      'sfda: within-class scatter is zero (every class is a single point), so the LDA fit is undefined',
    );
  const shrunk = matrix(d, d, sw); // in place: Sw is not needed any more
  for (let i = 0; i < d * d; i++) sw[i] *= 1 - lambda;
  for (let a = 0; a < d; a++) sw[a * d + a] += (lambda * trace) / d;
  const mt = matrix(d, c);
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) mt.data[j * c + k] = means[k * d + j];
  const l = await choleskyBlocked(shrunk);
  const coef = await solveCholesky(l, mt); // d×c, column k = Sw_λ⁻¹ μ_k
  const bias = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += means[k * d + j] * coef.data[j * c + k];
    bias[k] = -0.5 * s + Math.log(counts[k] / n);
  }
  const probs = (await matmul(rows.f, coef)).data; // N×C: F coef, before mixing and bias
  let mixedBias: Float64Array | null = null; // o_c · coef_k for the mixed rows
  if (w && others) {
    mixedBias = new Float64Array(c * c);
    for (let a = 0; a < c; a++)
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += others[a * d + j] * coef.data[j * c + k];
        mixedBias[a * c + k] = s;
      }
  }
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    const wi = w ? w[i] : 1;
    for (let k = 0; k < c; k++) {
      const mixed = mixedBias ? wi * probs[i * c + k] + (1 - wi) * mixedBias[y[i] * c + k] : probs[i * c + k];
      const s = mixed + bias[k];
      probs[i * c + k] = s;
      max = Math.max(max, s);
    }
    softmaxInPlace(probs, i * c, c, max);
  }
  return { probs, lambda, means };
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
  return withScratch(features.rows * d, async (scratch) => {
    const first = await fit({ f: features }, y, counts, scratch);
    const p = first.probs;
    // the reference softmaxes the probabilities a second time ("soften")
    for (let i = 0; i < features.rows; i++) {
      let max = -Infinity;
      for (let k = 0; k < c; k++) max = Math.max(max, p[i * c + k]);
      softmaxInPlace(p, i * c, c, max);
    }
    const means = first.means;
    const total = new Float64Array(d);
    for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) total[j] += means[k * d + j];
    const others = new Float64Array(c * d); // mean of the other classes' means
    for (let k = 0; k < c; k++)
      for (let j = 0; j < d; j++) others[k * d + j] = (total[j] - means[k * d + j]) / (c - 1);
    const w = Float64Array.from(y, (k, i) => p[i * c + k]); // ConfMix weight: the row's own-class probability
    const second = await fit({ f: features, w, others }, y, counts, scratch, first.lambda);
    let s = 0;
    for (let i = 0; i < features.rows; i++) s += second.probs[i * c + y[i]];
    return s / features.rows;
  });
}
