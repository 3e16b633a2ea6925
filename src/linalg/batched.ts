/**
 * Batched small-matrix work for Gaussian mixtures (K components in d dimensions over N points), as one
 * onnxruntime call each when large: per-component squared norms of affine maps (the E-step's Mahalanobis
 * distances) and per-component weighted scatter matrices (the M-step's covariances). The JS loops are the
 * reference for small problems and for the tests.
 */
import type { Matrix } from './matrix.ts';
import { type Program, run } from './ort-runtime.ts';
import { useOrt } from './products.ts';

const normsProgram = (): Program => ({
  nodes: [
    { op: 'MatMul', inputs: ['X', 'W'], outputs: ['XW'] },
    { op: 'Add', inputs: ['XW', 'B'], outputs: ['Y'] },
    { op: 'Mul', inputs: ['Y', 'Y'], outputs: ['Y2'] },
    { op: 'Reshape', inputs: ['Y2', 'shape'], outputs: ['Y3'] },
    { op: 'ReduceSum', inputs: ['Y3', 'axes'], outputs: ['Q'], ints: { keepdims: 0 } },
  ],
  inputs: [
    { name: 'X', type: 'float64', dims: ['n', 'd'] },
    { name: 'W', type: 'float64', dims: ['d', 'kd'] },
    { name: 'B', type: 'float64', dims: [1, 'kd'] },
    { name: 'shape', type: 'int64', dims: [3] },
    { name: 'axes', type: 'int64', dims: [1] },
  ],
  outputs: [{ name: 'Q', type: 'float64', dims: ['n', 'k'] }],
});

/**
 * Q[i][c] = ‖x_i A_cᵀ + b_c‖² for X (N×d), `a` holding K row-major d×d matrices A_c and `b` (K×d). With
 * A_c = L_c⁻¹ and b_c = −A_c μ_c this is the squared Mahalanobis distance, computed as scikit-learn does
 * (X A_cᵀ − μ_c A_cᵀ, not A_c (x − μ_c)).
 */
export async function affineSquaredNorms(
  x: Matrix,
  a: Float64Array,
  b: Float64Array,
  k: number,
): Promise<Float64Array> {
  const n = x.rows;
  const d = x.cols;
  const kd = k * d;
  if (useOrt(n * kd * d, true)) {
    // W[j][c·d + r] = A_c[r][j], so (X W)[i][c·d + r] = (x_i A_cᵀ)_r
    const w = new Float64Array(d * kd);
    for (let c = 0; c < k; c++)
      for (let r = 0; r < d; r++)
        for (let j = 0; j < d; j++) w[j * kd + c * d + r] = a[c * d * d + r * d + j];
    const out = await run('affine-squared-norms', normsProgram, {
      X: { type: 'float64', data: x.data, dims: [n, d] },
      W: { type: 'float64', data: w, dims: [d, kd] },
      B: { type: 'float64', data: b, dims: [1, kd] },
      shape: { type: 'int64', data: BigInt64Array.of(BigInt(n), BigInt(k), BigInt(d)), dims: [3] },
      axes: { type: 'int64', data: BigInt64Array.of(2n), dims: [1] },
    });
    return out.Q.data as Float64Array;
  }
  const X = x.data;
  const q = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const xi = i * d;
    for (let c = 0; c < k; c++) {
      const ac = c * d * d;
      let s = 0;
      for (let r = 0; r < d; r++) {
        const ar = ac + r * d;
        let y = b[c * d + r];
        for (let j = 0; j < d; j++) y += X[xi + j] * a[ar + j];
        s += y * y;
      }
      q[i * k + c] = s;
    }
  }
  return q;
}

const scatterProgram = (): Program => ({
  nodes: [
    { op: 'Sub', inputs: ['X', 'M'], outputs: ['D'] },
    { op: 'Sub', inputs: ['Xt', 'Mt'], outputs: ['Dt'] },
    { op: 'Mul', inputs: ['Dt', 'Rt'], outputs: ['RDt'] },
    { op: 'MatMul', inputs: ['RDt', 'D'], outputs: ['S'] },
  ],
  inputs: [
    { name: 'X', type: 'float64', dims: [1, 'n', 'd'] },
    { name: 'M', type: 'float64', dims: ['k', 1, 'd'] },
    { name: 'Xt', type: 'float64', dims: [1, 'd', 'n'] },
    { name: 'Mt', type: 'float64', dims: ['k', 'd', 1] },
    { name: 'Rt', type: 'float64', dims: ['k', 1, 'n'] },
  ],
  outputs: [{ name: 'S', type: 'float64', dims: ['k', 'd', 'd'] }],
});

/**
 * S_c = Σ_i r_ic (x_i − μ_c)(x_i − μ_c)ᵀ for X (N×d), means (K×d) and weights r (N×K): K row-major d×d
 * matrices, with the differences formed explicitly as scikit-learn does (no cancellation from Σ r x xᵀ − μμᵀ).
 */
export async function weightedScatter(
  x: Matrix,
  means: Float64Array,
  r: Float64Array,
  k: number,
): Promise<Float64Array> {
  const n = x.rows;
  const d = x.cols;
  const X = x.data;
  if (useOrt(n * k * d * d, true)) {
    const xt = new Float64Array(d * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) xt[j * n + i] = X[i * d + j];
    const rt = new Float64Array(k * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) rt[c * n + i] = r[i * k + c];
    const out = await run('weighted-scatter', scatterProgram, {
      X: { type: 'float64', data: X, dims: [1, n, d] },
      M: { type: 'float64', data: means, dims: [k, 1, d] },
      Xt: { type: 'float64', data: xt, dims: [1, d, n] },
      Mt: { type: 'float64', data: means, dims: [k, d, 1] },
      Rt: { type: 'float64', data: rt, dims: [k, 1, n] },
    });
    return out.S.data as Float64Array;
  }
  const s = new Float64Array(k * d * d);
  const diff = new Float64Array(d);
  for (let c = 0; c < k; c++) {
    const sc = c * d * d;
    for (let i = 0; i < n; i++) {
      const w = r[i * k + c];
      if (w === 0) continue;
      for (let j = 0; j < d; j++) diff[j] = X[i * d + j] - means[c * d + j];
      for (let p = 0; p < d; p++) {
        const wp = w * diff[p];
        const row = sc + p * d;
        for (let q = 0; q <= p; q++) s[row + q] += wp * diff[q];
      }
    }
    for (let p = 0; p < d; p++) for (let q = 0; q < p; q++) s[sc + q * d + p] = s[sc + p * d + q];
  }
  return s;
}
