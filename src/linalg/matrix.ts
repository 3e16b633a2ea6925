/**
 * Dense row-major float64 matrices: the one representation the linear algebra and the estimators share.
 * Float32 inputs are widened once at the boundary, because the estimators' reference numbers are float64.
 */
import { TlabError } from '../util/errors.ts';
import { addTo, subtractInto } from './dot.ts';

export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  /** Row-major, length rows*cols. */
  readonly data: Float64Array;
}

export type FloatArray = Float32Array | Float64Array;

export function matrix(rows: number, cols: number, data?: FloatArray): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0)
    throw new TlabError(`matrix: shape [${rows}, ${cols}] must be non-negative integers`);
  if (data === undefined) return { rows, cols, data: new Float64Array(rows * cols) };
  if (data.length !== rows * cols)
    throw new TlabError(
      `matrix: data has ${data.length} elements but shape [${rows}, ${cols}] needs ${rows * cols}`,
    );
  return { rows, cols, data: data instanceof Float64Array ? data : Float64Array.from(data) };
}

/** Builds a matrix from nested arrays (tests, small inputs). */
export function fromRows(rows: readonly (readonly number[])[]): Matrix {
  const r = rows.length;
  const c = r === 0 ? 0 : rows[0].length;
  const out = matrix(r, c);
  for (let i = 0; i < r; i++) {
    if (rows[i].length !== c)
      throw new TlabError(`fromRows: row ${i} has ${rows[i].length} values, expected ${c}`);
    out.data.set(rows[i], i * c);
  }
  return out;
}

export function toRows(m: Matrix): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < m.rows; i++) out.push(Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)));
  return out;
}

export function identity(n: number): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function transpose(m: Matrix): Matrix {
  const out = matrix(m.cols, m.rows);
  const { rows, cols, data } = m;
  const o = out.data;
  const B = 32; // tiles keep both sides in cache
  for (let i0 = 0; i0 < rows; i0 += B)
    for (let j0 = 0; j0 < cols; j0 += B) {
      const i1 = Math.min(rows, i0 + B);
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) o[j * rows + i] = data[i * cols + j];
    }
  return out;
}

/** Rows `idx` of m, in that order. */
export function selectRows(m: Matrix, idx: ArrayLike<number>): Matrix {
  const out = matrix(idx.length, m.cols);
  for (let k = 0; k < idx.length; k++)
    out.data.set(m.data.subarray(idx[k] * m.cols, (idx[k] + 1) * m.cols), k * m.cols);
  return out;
}

/** First `k` columns of m. */
export function leadingColumns(m: Matrix, k: number): Matrix {
  const out = matrix(m.rows, k);
  for (let i = 0; i < m.rows; i++) out.data.set(m.data.subarray(i * m.cols, i * m.cols + k), i * k);
  return out;
}

export function columnMeans(m: Matrix): Float64Array {
  const mean = new Float64Array(m.cols);
  const { rows, cols, data } = m;
  for (let i = 0; i < rows; i++) addTo(mean, 0, data, i * cols, cols);
  if (rows > 0) for (let j = 0; j < cols; j++) mean[j] /= rows;
  return mean;
}

/** m with each column's mean subtracted (a new matrix, or written into `out` of rows·cols elements). */
export function centerColumns(m: Matrix, mean: Float64Array = columnMeans(m), out?: Float64Array): Matrix {
  const { rows, cols, data } = m;
  const d = out ?? new Float64Array(rows * cols); // one pass (no copy-then-subtract)
  for (let i = 0; i < rows; i++) subtractInto(d, i * cols, data, i * cols, mean, 0, cols);
  return { rows, cols, data: d };
}

export function scale(m: Matrix, s: number): Matrix {
  const out = matrix(m.rows, m.cols, m.data.slice());
  for (let i = 0; i < out.data.length; i++) out.data[i] *= s;
  return out;
}

/** Throws when any element is NaN or infinite, naming the first bad row. */
export function assertFinite(m: Matrix, name: string): void {
  const { rows, cols, data } = m;
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    if (finiteRow(data, r, cols)) continue;
    for (let c = 0; c < cols; c++) {
      const x = data[r + c];
      if (!Number.isFinite(x))
        throw new TlabError(
          `${name}: row ${i} contains ${Number.isNaN(x) ? 'NaN' : 'an infinite value'} (column ${c})`,
        );
    }
  }
}

/** Whether a row is free of NaN and ±Infinity: x − x is 0 for finite x, NaN otherwise (a branch-free scan). */
function finiteRow(data: Float64Array, r: number, cols: number): boolean {
  let a0 = 0;
  let a1 = 0;
  let j = 0;
  for (; j + 1 < cols; j += 2) {
    a0 += data[r + j] - data[r + j];
    a1 += data[r + j + 1] - data[r + j + 1];
  }
  if (j < cols) a0 += data[r + j] - data[r + j];
  return a0 + a1 === 0;
}
