/**
 * Householder reduction of a symmetric matrix to tridiagonal form, A = Q T Qᵀ, and applying Q or Qᵀ to a block.
 * `tridiagonalizeBlocked` is the LAPACK dsytrd/dlatrd scheme: a panel of `block` reflectors is formed in JS with
 * the trailing matrix left untouched (its symmetric matrix-vector products corrected by the panel's V and W), and
 * the trailing matrix is then updated once, A22 − V Wᵀ − W Vᵀ, as one Gemm through onnxruntime. That moves half
 * the 4n³/3 flops out of JS; the other half, the matrix-vector products (`symv`) and the panel's corrections, run
 * as WebAssembly SIMD kernels (wasm/kernels.wat), with register-blocked JS loops as the fallback. At D=768:
 * 480 ms unblocked JS, 170 ms blocked JS, 75 ms blocked with the kernels.
 */
import { TlabError } from '../util/errors.ts';
import { type Matrix, matrix } from './matrix.ts';
import { trailingUpdate } from './products.ts';
import { withKernels } from './wasm.ts';

export interface Tridiagonal {
  readonly n: number;
  /** Diagonal of T. */
  readonly d: Float64Array;
  /** e[i] = T[i+1][i]; e[n-1] = 0. */
  readonly e: Float64Array;
  /**
   * Householder vectors, row-major n×n: row k holds v_k at columns k+2..n−1 (v_k[k+1] = 1 is implied), so each
   * reflector is contiguous for applyQ/applyQt.
   */
  readonly v: Float64Array;
  readonly tau: Float64Array;
}

export function checkSquare(a: Matrix, what: string): void {
  if (a.rows !== a.cols) throw new TlabError(`${what}: matrix must be square, got [${a.rows}, ${a.cols}]`);
}

/** A = Q T Qᵀ with Q = H_0 H_1 ... H_{n-3}; uses the lower triangle of `a` only. */
export function tridiagonalize(a: Matrix): Tridiagonal {
  checkSquare(a, 'tridiagonalize');
  const n = a.rows;
  const A = a.data.slice();
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  const vs = new Float64Array(n * n);
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const s = k + 1;
    d[k] = A[k * n + k];
    const alpha = A[s * n + k];
    let sig = 0;
    for (let i = k + 2; i < n; i++) {
      const x = A[i * n + k];
      sig += x * x;
    }
    if (sig === 0) {
      e[k] = alpha;
      tau[k] = 0;
      for (let i = k + 2; i < n; i++) A[i * n + k] = 0;
      continue;
    }
    const norm = Math.sqrt(alpha * alpha + sig);
    const beta = alpha <= 0 ? norm : -norm;
    const t = (beta - alpha) / beta;
    const inv = 1 / (alpha - beta);
    v[s] = 1;
    for (let i = k + 2; i < n; i++) v[i] = A[i * n + k] * inv;
    e[k] = beta;
    tau[k] = t;
    // p = t · A22 v over the lower triangle (each off-diagonal element serves both rows).
    for (let i = s; i < n; i++) p[i] = 0;
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      let acc = A[row + i] * vi;
      for (let j = s; j < i; j++) {
        const x = A[row + j];
        acc += x * v[j];
        p[j] += x * vi;
      }
      p[i] += acc;
    }
    let pv = 0;
    for (let i = s; i < n; i++) {
      p[i] *= t;
      pv += p[i] * v[i];
    }
    const h = 0.5 * t * pv;
    for (let i = s; i < n; i++) p[i] -= h * v[i];
    // A22 -= v wᵀ + w vᵀ (lower triangle)
    for (let i = s; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      const wi = p[i];
      for (let j = s; j <= i; j++) A[row + j] -= vi * p[j] + wi * v[j];
    }
    for (let i = k + 2; i < n; i++) vs[k * n + i] = v[i];
  }
  if (n >= 2) {
    d[n - 2] = A[(n - 2) * n + n - 2];
    e[n - 2] = A[(n - 1) * n + n - 2];
  }
  if (n >= 1) d[n - 1] = A[n * n - 1];
  return { n, d, e, v: vs, tau };
}

/** Applies one reflector H_k = I - τ v vᵀ (v over rows k+1..n-1) to the n×m row-major block y. */
function applyReflector(tri: Tridiagonal, k: number, y: Float64Array, m: number, w: Float64Array): void {
  const { n, v, tau } = tri;
  const t = tau[k];
  if (t === 0) return;
  const s = k + 1;
  w.fill(0, 0, m);
  for (let c = 0; c < m; c++) w[c] = y[s * m + c];
  for (let i = k + 2; i < n; i++) {
    const vi = v[k * n + i];
    if (vi === 0) continue;
    const r = i * m;
    for (let c = 0; c < m; c++) w[c] += vi * y[r + c];
  }
  for (let c = 0; c < m; c++) w[c] *= t;
  for (let c = 0; c < m; c++) y[s * m + c] -= w[c];
  for (let i = k + 2; i < n; i++) {
    const vi = v[k * n + i];
    if (vi === 0) continue;
    const r = i * m;
    for (let c = 0; c < m; c++) y[r + c] -= vi * w[c];
  }
}

/** The reflectors applied to a copy of B, H_0 first (Qᵀ B) or last (Q B); in WebAssembly when available. */
async function applyReflectors(tri: Tridiagonal, b: Matrix, transposed: boolean): Promise<Matrix> {
  const { n, v, tau } = tri;
  if (b.rows !== n) throw new TlabError(`applyQ: B has ${b.rows} rows, Q is ${n}×${n}`);
  const m = b.cols;
  const oV = b.data.length;
  const oTau = oV + n * n;
  const oW = oTau + n;
  const done =
    n > 2 && m > 0
      ? await withKernels((oW + m) * 8, (kern) => {
          if (!kern) return null;
          const f64 = new Float64Array(kern.memory.buffer);
          f64.set(b.data, 0);
          f64.set(v, oV);
          f64.set(tau, oTau);
          kern.reflect_rows(0, m, oV * 8, n, oTau * 8, oW * 8, transposed ? 1 : -1);
          return matrix(n, m, f64.slice(0, oV));
        })
      : null;
  if (done) return done;
  const y = b.data.slice();
  const w = new Float64Array(m);
  if (transposed) for (let k = 0; k < n - 2; k++) applyReflector(tri, k, y, m, w);
  else for (let k = n - 3; k >= 0; k--) applyReflector(tri, k, y, m, w);
  return matrix(n, m, y);
}

/** Qᵀ B for B (n×m); returns a new matrix. */
export function applyQt(tri: Tridiagonal, b: Matrix): Promise<Matrix> {
  return applyReflectors(tri, b, true);
}

/** Q B for B (n×m); returns a new matrix. */
export function applyQ(tri: Tridiagonal, b: Matrix): Promise<Matrix> {
  return applyReflectors(tri, b, false);
}

/**
 * y = S v for the symmetric S = T[o:, o:] of row-major m×m `t`, reading only its lower triangle. Four rows at a
 * time: each loaded element serves both its row's dot product and the transposed contribution to y[c], and y[c]
 * is loaded and stored once per four rows.
 */
export function symvLower(t: Float64Array, m: number, o: number, v: Float64Array, y: Float64Array): void {
  const len = m - o;
  y.fill(0, 0, len);
  let r = 0;
  for (; r + 3 < len; r += 4) {
    const b0 = (o + r) * m + o;
    const b1 = b0 + m;
    const b2 = b1 + m;
    const b3 = b2 + m;
    const v0 = v[r];
    const v1 = v[r + 1];
    const v2 = v[r + 2];
    const v3 = v[r + 3];
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let c = 0; c < r; c++) {
      const t0 = t[b0 + c];
      const t1 = t[b1 + c];
      const t2 = t[b2 + c];
      const t3 = t[b3 + c];
      const vc = v[c];
      a0 += t0 * vc;
      a1 += t1 * vc;
      a2 += t2 * vc;
      a3 += t3 * vc;
      y[c] += t0 * v0 + t1 * v1 + t2 * v2 + t3 * v3;
    }
    // the 4×4 diagonal block, lower triangle mirrored
    const t10 = t[b1 + r];
    const t20 = t[b2 + r];
    const t21 = t[b2 + r + 1];
    const t30 = t[b3 + r];
    const t31 = t[b3 + r + 1];
    const t32 = t[b3 + r + 2];
    y[r] += a0 + t[b0 + r] * v0 + t10 * v1 + t20 * v2 + t30 * v3;
    y[r + 1] += a1 + t10 * v0 + t[b1 + r + 1] * v1 + t21 * v2 + t31 * v3;
    y[r + 2] += a2 + t20 * v0 + t21 * v1 + t[b2 + r + 2] * v2 + t32 * v3;
    y[r + 3] += a3 + t30 * v0 + t31 * v1 + t32 * v2 + t[b3 + r + 3] * v3;
  }
  for (; r < len; r++) {
    const b = (o + r) * m + o;
    const vr = v[r];
    let a = 0;
    for (let c = 0; c < r; c++) {
      const x = t[b + c];
      a += x * v[c];
      y[c] += x * vr;
    }
    y[r] += a + t[b + r] * vr;
  }
}

/** Same result as `tridiagonalize` up to rounding, for large matrices; reads the lower triangle of `a` only. */
export async function tridiagonalizeBlocked(a: Matrix, block = 32): Promise<Tridiagonal> {
  checkSquare(a, 'tridiagonalize');
  const n = a.rows;
  if (n <= block + 2) return tridiagonalize(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  const vs = new Float64Array(n * n); // reflectors in tridiagonalize's layout, for applyQ/applyQt
  // One workspace, in WebAssembly memory when the SIMD kernels are available: two n×n buffers that the trailing
  // matrix alternates between (onnxruntime writes each update straight into the other one), the panel's
  // reflectors V and the matching W column-major (column p is rows 0..m-1 of the trailing matrix), and vectors.
  const nn = n * n;
  const oVc = 2 * nn;
  const oWc = oVc + n * block;
  const oCol = oWc + n * block;
  const oV = oCol + n;
  const oW = oV + n;
  const size = oW + n;
  return withKernels(size * 8, async (kern) => {
    const buf = kern ? new Float64Array(kern.memory.buffer, 0, size) : new Float64Array(size);
    const vc = buf.subarray(oVc, oWc);
    const wc = buf.subarray(oWc, oCol);
    const col = buf.subarray(oCol, oV);
    const v = buf.subarray(oV, oW);
    const w = buf.subarray(oW, size);
    const wv = new Float64Array(block);
    const vv = new Float64Array(block);
    const x = new Float64Array(n * 2 * block);
    const y = new Float64Array(n * 2 * block);
    let tOff = 0; // the trailing matrix, m×m, lower triangle valid, at buf[tOff..]
    buf.set(a.data, 0);
    let m = n;
    let k0 = 0;
    while (m > 2) {
      const t = buf.subarray(tOff, tOff + m * m);
      const kb = Math.min(block, m - 2);
      vc.fill(0, 0, kb * m);
      wc.fill(0, 0, kb * m);
      for (let i = 0; i < kb; i++) {
        // column i of the trailing matrix as the panel's earlier reflectors have left it, rows i..m-1
        for (let r = i; r < m; r++) col[r] = t[r * m + i];
        for (let p = 0; p < i; p++) {
          const po = p * m;
          const wi = wc[po + i];
          const vi = vc[po + i];
          if (kern) kern.axpy2((oCol + i) * 8, (oVc + po + i) * 8, wi, (oWc + po + i) * 8, vi, m - i);
          else for (let r = i; r < m; r++) col[r] -= vc[po + r] * wi + wc[po + r] * vi;
        }
        const k = k0 + i;
        d[k] = col[i];
        const alpha = col[i + 1];
        let sig = 0;
        for (let r = i + 2; r < m; r++) sig += col[r] * col[r];
        if (sig === 0) {
          e[k] = alpha;
          tau[k] = 0;
          continue;
        }
        const norm = Math.sqrt(alpha * alpha + sig);
        const beta = alpha <= 0 ? norm : -norm;
        const tk = (beta - alpha) / beta;
        const inv = 1 / (alpha - beta);
        e[k] = beta;
        tau[k] = tk;
        const len = m - i - 1; // v over rows i+1..m-1, v[0] = 1
        const s = i + 1;
        v[0] = 1;
        for (let q = 1; q < len; q++) {
          const xq = col[s + q] * inv;
          v[q] = xq;
          vs[k * n + k0 + s + q] = xq;
        }
        const io = i * m;
        for (let q = 0; q < len; q++) vc[io + s + q] = v[q];
        if (kern) kern.symv_lower(tOff * 8, m, s, oV * 8, oW * 8);
        else symvLower(t, m, s, v, w);
        // w -= V (Wᵀ v) + W (Vᵀ v) over the panel's earlier columns: the updates A22 has not received yet
        for (let p = 0; p < i; p++) {
          const po = p * m + s;
          if (kern) {
            wv[p] = kern.dot((oWc + po) * 8, oV * 8, len);
            vv[p] = kern.dot((oVc + po) * 8, oV * 8, len);
          } else {
            let a1 = 0;
            let a2 = 0;
            for (let q = 0; q < len; q++) {
              a1 += wc[po + q] * v[q];
              a2 += vc[po + q] * v[q];
            }
            wv[p] = a1;
            vv[p] = a2;
          }
        }
        for (let p = 0; p < i; p++) {
          const po = p * m + s;
          if (kern) kern.axpy2(oW * 8, (oVc + po) * 8, wv[p], (oWc + po) * 8, vv[p], len);
          else for (let q = 0; q < len; q++) w[q] -= vc[po + q] * wv[p] + wc[po + q] * vv[p];
        }
        let pv = 0;
        for (let q = 0; q < len; q++) {
          w[q] *= tk;
          pv += w[q] * v[q];
        }
        const h = 0.5 * tk * pv;
        for (let q = 0; q < len; q++) wc[io + s + q] = w[q] - h * v[q];
      }
      // trailing update T[kb:, kb:] − [V W] [W V]ᵀ, written into the other buffer
      const p = m - kb;
      const k2 = 2 * kb;
      for (let c = 0; c < kb; c++) {
        const co = c * m + kb;
        for (let r = 0; r < p; r++) {
          const vx = vc[co + r];
          const wx = wc[co + r];
          x[r * k2 + c] = vx;
          x[r * k2 + kb + c] = wx;
          y[r * k2 + c] = wx;
          y[r * k2 + kb + c] = vx;
        }
      }
      const next = tOff === 0 ? nn : 0;
      await trailingUpdate(t, m, kb, x, y, k2, buf.subarray(next, next + nn));
      tOff = next;
      m = p;
      k0 += kb;
    }
    d[k0] = buf[tOff];
    e[k0] = buf[tOff + 2];
    d[k0 + 1] = buf[tOff + 3];
    return { n, d, e, v: vs, tau };
  });
}
