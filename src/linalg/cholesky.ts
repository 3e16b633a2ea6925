/** Cholesky factorisation of symmetric positive-definite matrices, triangular solves and log-determinants. */
import { TlabError } from '../util/errors.ts';
import { type Matrix, matrix } from './matrix.ts';

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
