/**
 * The logistic-regression objectives (divided by n) and their gradients, fused into one pass over the rows. Rows
 * go in pairs and classes in pairs: each weight load then serves two rows and each gradient read-modify-write
 * carries two rows' terms, which made a pass ~1.5× faster than row-at-a-time dots and axpys (JS array loads and
 * stores are the cost). The kernels are small functions called once per row pair, so V8 optimises them early.
 */

export interface LogisticProblem {
  /** n×d row-major. */
  x: Float64Array;
  n: number;
  d: number;
  labels: Int32Array;
  classes: number;
  invC: number;
  fitIntercept: boolean;
}

/** out = (x0·w0, x0·w1, x1·w0, x1·w1) at out[o..o+3], rows at r0, r1 and weights at w0, w1 (length len). */
function dot22(
  x: Float64Array,
  r0: number,
  r1: number,
  w: Float64Array,
  w0: number,
  w1: number,
  len: number,
  out: Float64Array,
  o: number,
): void {
  let a = 0;
  let b = 0;
  let c = 0;
  let e = 0;
  for (let k = 0; k < len; k++) {
    const u = x[r0 + k];
    const v = x[r1 + k];
    const p = w[w0 + k];
    const q = w[w1 + k];
    a += u * p;
    b += u * q;
    c += v * p;
    e += v * q;
  }
  out[o] = a;
  out[o + 1] = b;
  out[o + 2] = c;
  out[o + 3] = e;
}

/** (x0·w, x1·w) into out[o], out[o + 1]; two accumulators per row. */
function dot21(
  x: Float64Array,
  r0: number,
  r1: number,
  w: Float64Array,
  wo: number,
  len: number,
  out: Float64Array,
  o: number,
): void {
  let a0 = 0;
  let a1 = 0;
  let c0 = 0;
  let c1 = 0;
  let k = 0;
  for (; k + 1 < len; k += 2) {
    const p = w[wo + k];
    const q = w[wo + k + 1];
    a0 += x[r0 + k] * p;
    a1 += x[r0 + k + 1] * q;
    c0 += x[r1 + k] * p;
    c1 += x[r1 + k + 1] * q;
  }
  if (k < len) {
    a0 += x[r0 + k] * w[wo + k];
    c0 += x[r1 + k] * w[wo + k];
  }
  out[o] = a0 + a1;
  out[o + 1] = c0 + c1;
}

/** Single row: x·w with four accumulators. */
function dot1(x: Float64Array, r: number, w: Float64Array, wo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < len; k += 4) {
    s0 += x[r + k] * w[wo + k];
    s1 += x[r + k + 1] * w[wo + k + 1];
    s2 += x[r + k + 2] * w[wo + k + 2];
    s3 += x[r + k + 3] * w[wo + k + 3];
  }
  for (; k < len; k++) s0 += x[r + k] * w[wo + k];
  return s0 + s1 + (s2 + s3);
}

/** g0 += a00·x0 + a10·x1, g1 += a01·x0 + a11·x1 (a_rc: row r's coefficient for class c). */
function axpy22(
  g: Float64Array,
  g0: number,
  g1: number,
  a00: number,
  a01: number,
  a10: number,
  a11: number,
  x: Float64Array,
  r0: number,
  r1: number,
  len: number,
): void {
  for (let k = 0; k < len; k++) {
    const u = x[r0 + k];
    const v = x[r1 + k];
    g[g0 + k] += a00 * u + a10 * v;
    g[g1 + k] += a01 * u + a11 * v;
  }
}

/** g += a·x0 + b·x1. */
function axpy21(
  g: Float64Array,
  go: number,
  a: number,
  b: number,
  x: Float64Array,
  r0: number,
  r1: number,
  len: number,
): void {
  for (let k = 0; k < len; k++) g[go + k] += a * x[r0 + k] + b * x[r1 + k];
}

/** g += a·x. */
function axpy1(g: Float64Array, go: number, a: number, x: Float64Array, r: number, len: number): void {
  for (let k = 0; k < len; k++) g[go + k] += a * x[r + k];
}

/**
 * −log softmax(z)_y of the K logits at z[o..], and the residuals p_k − [k = y] into res[o..] (∂loss/∂z_k).
 */
function softmaxLoss(z: Float64Array, o: number, K: number, y: number, res: Float64Array): number {
  let zmax = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < K; k++) if (z[o + k] > zmax) zmax = z[o + k];
  const zy = z[o + y];
  let sum = 0;
  for (let k = 0; k < K; k++) {
    const e = Math.exp(z[o + k] - zmax);
    res[o + k] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let k = 0; k < K; k++) res[o + k] *= inv;
  res[o + y] -= 1;
  return Math.log(sum) + zmax - zy;
}

export interface MultinomialScratch {
  /** Logits of a row pair: row i at [0, K), row i + 1 at [K, 2K). */
  z: Float64Array;
  /** Their residuals p − onehot(y), same layout. */
  res: Float64Array;
  /** Four dot products of dot22. */
  t: Float64Array;
}

export function multinomialScratch(classes: number): MultinomialScratch {
  return { z: new Float64Array(2 * classes), res: new Float64Array(2 * classes), t: new Float64Array(4) };
}

/**
 * (Σ_i −log softmax(W x_i + b)_{y_i} + ‖W‖²/(2C)) / n and its gradient, θ = W (classes×d, row-major) then b.
 */
export function multinomialMeanObjective(
  p: LogisticProblem,
  theta: Float64Array,
  grad: Float64Array,
  scratch: MultinomialScratch,
): number {
  const { x, n, d, labels, classes: K, invC, fitIntercept } = p;
  const { z, res, t } = scratch;
  const bo = K * d;
  grad.fill(0);
  let loss = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const r0 = i * d;
    const r1 = r0 + d;
    // logits: z[k] of row i, z[K + k] of row i + 1
    let k = 0;
    for (; k + 1 < K; k += 2) {
      dot22(x, r0, r1, theta, k * d, (k + 1) * d, d, t, 0);
      z[k] = t[0];
      z[k + 1] = t[1];
      z[K + k] = t[2];
      z[K + k + 1] = t[3];
    }
    if (k < K) {
      dot21(x, r0, r1, theta, k * d, d, t, 0);
      z[k] = t[0];
      z[K + k] = t[1];
    }
    if (fitIntercept)
      for (let c = 0; c < K; c++) {
        z[c] += theta[bo + c];
        z[K + c] += theta[bo + c];
      }
    loss += softmaxLoss(z, 0, K, labels[i], res) + softmaxLoss(z, K, K, labels[i + 1], res);
    k = 0;
    for (; k + 1 < K; k += 2)
      axpy22(grad, k * d, (k + 1) * d, res[k], res[k + 1], res[K + k], res[K + k + 1], x, r0, r1, d);
    if (k < K) axpy21(grad, k * d, res[k], res[K + k], x, r0, r1, d);
    if (fitIntercept) for (let c = 0; c < K; c++) grad[bo + c] += res[c] + res[K + c];
  }
  if (i < n) {
    const r = i * d;
    for (let k = 0; k < K; k++) z[k] = (fitIntercept ? theta[bo + k] : 0) + dot1(x, r, theta, k * d, d);
    loss += softmaxLoss(z, 0, K, labels[i], res);
    for (let k = 0; k < K; k++) {
      axpy1(grad, k * d, res[k], x, r, d);
      if (fitIntercept) grad[bo + k] += res[k];
    }
  }
  let penalty = 0;
  for (let j = 0; j < bo; j++) {
    const w = theta[j];
    penalty += w * w;
    grad[j] += invC * w;
  }
  const scale = 1 / n;
  for (let j = 0; j < grad.length; j++) grad[j] *= scale;
  return (loss + 0.5 * invC * penalty) * scale;
}

/** log(1 + eᵗ) − y t and σ(t) − y, without overflow for large |t|. */
function binomialTerm(t: number, y: number, out: Float64Array, o: number): number {
  const e = Math.exp(-Math.abs(t));
  out[o] = (t >= 0 ? 1 / (1 + e) : e / (1 + e)) - y;
  return Math.max(t, 0) + Math.log1p(e) - y * t;
}

/**
 * The two-class problem in θ = (w, b), labels 0/1 (1 positive): (Σ_i log(1 + e^{t_i}) − y_i t_i + ‖w‖²/(4C)) / n
 * with t_i = w·x_i + b, and its gradient (the multinomial objective on W₁ = w/2 = −W₀).
 */
export function binomialMeanObjective(
  p: LogisticProblem,
  theta: Float64Array,
  grad: Float64Array,
  /** Four slots of scratch. */
  t: Float64Array,
): number {
  const { x, n, d, labels, invC, fitIntercept } = p;
  grad.fill(0);
  const b = fitIntercept ? theta[d] : 0;
  let loss = 0;
  let gb = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const r0 = i * d;
    dot21(x, r0, r0 + d, theta, 0, d, t, 0);
    loss += binomialTerm(t[0] + b, labels[i], t, 2) + binomialTerm(t[1] + b, labels[i + 1], t, 3);
    axpy21(grad, 0, t[2], t[3], x, r0, r0 + d, d);
    gb += t[2] + t[3];
  }
  if (i < n) {
    const r = i * d;
    loss += binomialTerm(b + dot1(x, r, theta, 0, d), labels[i], t, 2);
    axpy1(grad, 0, t[2], x, r, d);
    gb += t[2];
  }
  const half = 0.5 * invC; // penalty ‖w‖²/(4C)
  let penalty = 0;
  for (let j = 0; j < d; j++) {
    const w = theta[j];
    penalty += w * w;
    grad[j] += half * w;
  }
  grad[d] = fitIntercept ? gb : 0;
  const scale = 1 / n;
  for (let j = 0; j <= d; j++) grad[j] *= scale;
  return (loss + 0.5 * half * penalty) * scale;
}
