/** Cholesky factorisation of symmetric positive-definite matrices, triangular solves and log-determinants. */
import { TlabError } from '../util/errors.ts';
import { dot } from './dot.ts';
import { type Matrix, matrix } from './matrix.ts';
import { type Program, run } from './ort-runtime.ts';
import { trailingUpdate, useOrt } from './products.ts';
import { withKernels } from './wasm.ts';

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
      const s = A[ri + j] - dot(L, ri, L, rj, j); // the already computed parts of rows i and j (contiguous)
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
      const s = t[i * m + j] - dot(l, ri, l, rj, j);
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

const panelProgram = (): Program => ({
  nodes: [
    { op: 'Slice', inputs: ['T', 'panelStart', 'panelEnd'], outputs: ['A21'] },
    { op: 'MatMul', inputs: ['A21', 'Linv'], outputs: ['L21'] },
    { op: 'Slice', inputs: ['T', 'restStart', 'restEnd'], outputs: ['A22'] },
    {
      op: 'Gemm',
      inputs: ['L21', 'L21', 'A22'],
      outputs: ['Z'],
      ints: { transB: 1 },
      floats: { alpha: -1, beta: 1 },
    },
  ],
  inputs: [
    { name: 'T', type: 'float64', dims: ['m', 'm'] },
    { name: 'Linv', type: 'float64', dims: ['k', 'k'] },
    { name: 'panelStart', type: 'int64', dims: [2] },
    { name: 'panelEnd', type: 'int64', dims: [2] },
    { name: 'restStart', type: 'int64', dims: [2] },
    { name: 'restEnd', type: 'int64', dims: [2] },
  ],
  outputs: [
    { name: 'L21', type: 'float64', dims: ['p', 'k'] },
    { name: 'Z', type: 'float64', dims: ['p', 'p'] },
  ],
});

/** (L⁻¹)ᵀ of the row-major kb×kb lower-triangular `l`, row-major. */
function inverseTransposed(l: Float64Array, kb: number): Float64Array {
  const inv = new Float64Array(kb * kb); // lower L⁻¹ by forward substitution on the columns of I
  for (let c = 0; c < kb; c++)
    for (let i = c; i < kb; i++) {
      let s = i === c ? 1 : 0;
      for (let q = c; q < i; q++) s -= l[i * kb + q] * inv[q * kb + c];
      inv[i * kb + c] = s / l[i * kb + i];
    }
  const out = new Float64Array(kb * kb);
  for (let i = 0; i < kb; i++) for (let j = 0; j < kb; j++) out[i * kb + j] = inv[j * kb + i];
  return out;
}

const int2 = (a: number, b: number) => ({
  type: 'int64' as const,
  data: BigInt64Array.of(BigInt(a), BigInt(b)),
  dims: [2],
});

/**
 * Blocked right-looking Cholesky. Per panel of kb columns: the diagonal block in JS, then, when the trailing
 * matrix is large, one onnxruntime call for the rest: L21 = A21 L11⁻ᵀ (a product with the explicit inverse of
 * the small triangular factor, not a substitution, so it is one Gemm) and A22 − L21 L21ᵀ, written into a
 * pre-allocated buffer. Small trailing matrices stay in JS (forward substitution, products.ts
 * `trailingUpdate`). Same result as `cholesky` up to rounding.
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
    let next: Float64Array;
    let l21: Float64Array;
    if (useOrt(p * p * kb, true)) {
      const z = spare.subarray(0, p * p);
      const out = await run(
        'cholesky-panel',
        panelProgram,
        {
          T: { type: 'float64', data: t.subarray(0, m * m), dims: [m, m] },
          Linv: { type: 'float64', data: inverseTransposed(l11.subarray(0, kb * kb), kb), dims: [kb, kb] },
          panelStart: int2(kb, 0),
          panelEnd: int2(m, kb),
          restStart: int2(kb, kb),
          restEnd: int2(m, m),
        },
        { Z: { data: z, dims: [p, p] } },
      );
      l21 = out.L21.data as Float64Array;
      next = z;
    } else {
      l21 = new Float64Array(p * kb);
      for (let r = 0; r < p; r++) {
        const tr = (kb + r) * m;
        const xr = r * kb;
        for (let j = 0; j < kb; j++) {
          const rj = j * kb;
          let s = t[tr + j];
          for (let q = 0; q < j; q++) s -= l21[xr + q] * l11[rj + q];
          l21[xr + j] = s / l11[rj + j];
        }
      }
      next = await trailingUpdate(t, m, kb, l21, l21, kb, spare);
    }
    for (let r = 0; r < p; r++) L.set(l21.subarray(r * kb, (r + 1) * kb), (k0 + kb + r) * n + k0);
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

/** B (n×m row-major) as m contiguous columns, so each substitution below runs along rows of L. */
function columnsOf(b: Matrix): Float64Array {
  const { rows: n, cols: m, data } = b;
  const x = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let c = 0; c < m; c++) x[c * n + i] = data[i * m + c];
  return x;
}

function fromColumns(x: Float64Array, n: number, m: number): Matrix {
  const out = matrix(n, m);
  for (let i = 0; i < n; i++) for (let c = 0; c < m; c++) out.data[i * m + c] = x[c * n + i];
  return out;
}

/** Solves L X = B (forward substitution) for lower-triangular L; B is n×m. */
export function solveLower(l: Matrix, b: Matrix): Matrix {
  const n = l.rows;
  const m = b.cols;
  const L = l.data;
  const x = columnsOf(b);
  for (let c = 0; c < m; c++) {
    const o = c * n;
    for (let i = 0; i < n; i++) x[o + i] = (x[o + i] - dot(L, i * n, x, o, i)) / L[i * n + i]; // row i · solved part
  }
  return fromColumns(x, n, m);
}

/** Solves Lᵀ X = B (back substitution) for lower-triangular L; B is n×m. */
export function solveUpperT(l: Matrix, b: Matrix): Matrix {
  const n = l.rows;
  const m = b.cols;
  const L = l.data;
  const x = columnsOf(b);
  for (let c = 0; c < m; c++) {
    const o = c * n;
    for (let i = n - 1; i >= 0; i--) {
      const ri = i * n;
      const xi = x[o + i] / L[ri + i];
      x[o + i] = xi;
      // column i of Lᵀ is row i of L: remove x_i from the equations above it
      let k = 0;
      for (; k + 3 < i; k += 4) {
        x[o + k] -= L[ri + k] * xi;
        x[o + k + 1] -= L[ri + k + 1] * xi;
        x[o + k + 2] -= L[ri + k + 2] * xi;
        x[o + k + 3] -= L[ri + k + 3] * xi;
      }
      for (; k < i; k++) x[o + k] -= L[ri + k] * xi;
    }
  }
  return fromColumns(x, n, m);
}

/**
 * Solves L Lᵀ X = B (both substitutions) for lower-triangular L; B is n×m. The same as
 * solveUpperT(l, solveLower(l, b)), with the row dot products and updates as WebAssembly SIMD kernels when available.
 */
export async function solveCholesky(l: Matrix, b: Matrix): Promise<Matrix> {
  const n = l.rows;
  const m = b.cols;
  if (b.rows !== n) throw new TlabError(`solveCholesky: B has ${b.rows} rows, L is ${n}×${n}`);
  const oX = n * n;
  const done = await withKernels((oX + n * m) * 8, (k) => {
    if (!k || n === 0) return null;
    const f64 = new Float64Array(k.memory.buffer);
    f64.set(l.data, 0);
    f64.set(columnsOf(b), oX);
    for (let c = 0; c < m; c++) {
      const o = oX + c * n;
      for (let i = 0; i < n; i++) f64[o + i] = (f64[o + i] - k.dot(i * n * 8, o * 8, i)) / f64[i * n + i];
      for (let i = n - 1; i >= 0; i--) {
        const xi = f64[o + i] / f64[i * n + i];
        f64[o + i] = xi;
        k.axpy2(o * 8, i * n * 8, xi, i * n * 8, 0, i); // column i of Lᵀ is row i of L
      }
    }
    return fromColumns(f64.subarray(oX, oX + n * m), n, m);
  });
  return done ?? solveUpperT(l, solveLower(l, b));
}

/** Solves A X = B for symmetric positive-definite A. */
export function solveSpd(a: Matrix, b: Matrix): Matrix {
  if (b.rows !== a.rows) throw new TlabError(`solveSpd: B has ${b.rows} rows, A is ${a.rows}×${a.rows}`);
  const l = cholesky(a);
  return solveUpperT(l, solveLower(l, b));
}
