/** Cholesky factorisation of symmetric positive-definite matrices, triangular solves and log-determinants. */
import { TlabError } from '../util/errors.ts';
import { type Matrix, matrix } from './matrix.ts';
import { trailingUpdate } from './products.ts';

/** Lower-triangular L with A = L Lᵀ (reads the lower triangle of A). Throws if A is not positive definite. */
export function cholesky(a: Matrix): Matrix {
  if (a.rows !== a.cols) throw new TlabError(`cholesky: matrix must be square, got [${a.rows}, ${a.cols}]`);
  const n = a.rows;
  const L = new Float64Array(n * n);
  const A = a.data;
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = A[ri + j];
      // dot of the already computed parts of rows i and j (contiguous)
      let s0 = 0;
      let s1 = 0;
      let k = 0;
      for (; k + 1 < j; k += 2) {
        s0 += L[ri + k] * L[rj + k];
        s1 += L[ri + k + 1] * L[rj + k + 1];
      }
      if (k < j) s0 += L[ri + k] * L[rj + k];
      s -= s0 + s1;
      if (i === j) {
        if (!(s > 0)) throw new TlabError(`cholesky: matrix is not positive definite (pivot ${i} is ${s})`);
        L[ri + i] = Math.sqrt(s);
      } else {
        L[ri + j] = s / L[rj + j];
      }
    }
  }
  return matrix(n, n, L);
}

/** Unblocked factorisation of the leading kb×kb block of row-major m×m `t` into row-major kb×kb `l`. */
function factorBlock(t: Float64Array, m: number, kb: number, l: Float64Array, offset: number): void {
  for (let i = 0; i < kb; i++) {
    const ri = i * kb;
    for (let j = 0; j <= i; j++) {
      const rj = j * kb;
      let s = t[i * m + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      if (i === j) {
        if (!(s > 0))
          throw new TlabError(`cholesky: matrix is not positive definite (pivot ${offset + i} is ${s})`);
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
}

/**
 * Blocked right-looking Cholesky: a kb-wide panel in JS (diagonal block, then the rows below it by forward
 * substitution), and the trailing update A22 − L21 L21ᵀ, which holds almost all the flops, through onnxruntime's
 * Gemm when it is large (products.ts `trailingUpdate`). Same result as `cholesky` up to rounding.
 */
export async function choleskyBlocked(a: Matrix, block = 64): Promise<Matrix> {
  if (a.rows !== a.cols) throw new TlabError(`cholesky: matrix must be square, got [${a.rows}, ${a.cols}]`);
  const n = a.rows;
  const L = new Float64Array(n * n);
  let t = a.data; // the current trailing matrix, m×m (a is never written)
  let spare: Float64Array = new Float64Array(Math.max(0, n - block) ** 2); // updates alternate between two buffers
  let m = n;
  let k0 = 0;
  const l11 = new Float64Array(block * block);
  while (m > 0) {
    const kb = Math.min(block, m);
    factorBlock(t, m, kb, l11, k0);
    for (let i = 0; i < kb; i++) for (let j = 0; j <= i; j++) L[(k0 + i) * n + k0 + j] = l11[i * kb + j];
    if (m === kb) break;
    const p = m - kb;
    const l21 = new Float64Array(p * kb);
    for (let r = 0; r < p; r++) {
      const tr = (kb + r) * m;
      const xr = r * kb;
      for (let j = 0; j < kb; j++) {
        const rj = j * kb;
        let s = t[tr + j];
        for (let q = 0; q < j; q++) s -= l21[xr + q] * l11[rj + q];
        l21[xr + j] = s / l11[rj + j];
      }
      L.set(l21.subarray(xr, xr + kb), (k0 + kb + r) * n + k0);
    }
    const next = await trailingUpdate(t, m, kb, l21, l21, kb, spare);
    spare = t === a.data ? new Float64Array(spare.length) : t;
    t = next;
    m = p;
    k0 += kb;
  }
  return matrix(n, n, L);
}

/** ln det A = 2 Σ ln L_ii. */
export function logdetCholesky(l: Matrix): number {
  let s = 0;
  for (let i = 0; i < l.rows; i++) s += Math.log(l.data[i * l.rows + i]);
  return 2 * s;
}

/** ln det of a symmetric positive-definite matrix. */
export function logdetSpd(a: Matrix): number {
  return logdetCholesky(cholesky(a));
}

/** Solves L X = B (forward substitution) for lower-triangular L; B is n×m. */
export function solveLower(l: Matrix, b: Matrix): Matrix {
  const n = l.rows;
  const m = b.cols;
  const x = b.data.slice();
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const lik = l.data[ri + k];
      if (lik === 0) continue;
      for (let c = 0; c < m; c++) x[i * m + c] -= lik * x[k * m + c];
    }
    const inv = 1 / l.data[ri + i];
    for (let c = 0; c < m; c++) x[i * m + c] *= inv;
  }
  return matrix(n, m, x);
}

/** Solves Lᵀ X = B (back substitution) for lower-triangular L; B is n×m. */
export function solveUpperT(l: Matrix, b: Matrix): Matrix {
  const n = l.rows;
  const m = b.cols;
  const x = b.data.slice();
  for (let i = n - 1; i >= 0; i--) {
    const inv = 1 / l.data[i * n + i];
    for (let c = 0; c < m; c++) x[i * m + c] *= inv;
    for (let k = 0; k < i; k++) {
      const lik = l.data[i * n + k];
      if (lik === 0) continue;
      for (let c = 0; c < m; c++) x[k * m + c] -= lik * x[i * m + c];
    }
  }
  return matrix(n, m, x);
}

/** Solves A X = B for symmetric positive-definite A. */
export function solveSpd(a: Matrix, b: Matrix): Matrix {
  if (b.rows !== a.rows) throw new TlabError(`solveSpd: B has ${b.rows} rows, A is ${a.rows}×${a.rows}`);
  const l = cholesky(a);
  return solveUpperT(l, solveLower(l, b));
}
