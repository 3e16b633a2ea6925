/**
 * Symmetric eigendecomposition: Householder reduction to tridiagonal form, then implicit QL with Wilkinson-style
 * shifts (the EISPACK tql2 scheme). The estimators rarely need the full eigenvector matrix: LogME and the
 * H-scores need Vᵀb for a handful of vectors b, PCA needs the top k vectors. So the QL rotations are recorded and
 * applied afterwards in one WebAssembly call, either forwards to a small block (Vᵀ B costs O(n²·k), not O(n³)) or
 * backwards on k unit vectors. The reduction is tridiagonal.ts's blocked one (onnxruntime + WebAssembly).
 */
import { TlabError } from '../util/errors.ts';
import { type Matrix, matrix } from './matrix.ts';
import { applyQ, applyQt, checkSquare, tridiagonalizeBlocked } from './tridiagonal.ts';
import { withKernels } from './wasm.ts';

/** Rotations recorded by the QL iteration, in the order they were applied. */
export interface Rotations {
  count: number;
  index: Int32Array;
  c: Float64Array;
  s: Float64Array;
}

function pushRotation(r: Rotations, i: number, c: number, s: number): void {
  if (r.count === r.index.length) {
    const cap = r.index.length * 2;
    const index = new Int32Array(cap);
    index.set(r.index);
    const cc = new Float64Array(cap);
    cc.set(r.c);
    const ss = new Float64Array(cap);
    ss.set(r.s);
    r.index = index;
    r.c = cc;
    r.s = ss;
  }
  r.index[r.count] = i;
  r.c[r.count] = c;
  r.s[r.count] = s;
  r.count++;
}

/** √(a² + b²): Math.hypot is several times slower in V8, so it is kept for magnitudes where a² could overflow. */
function hypot(a: number, b: number): number {
  const x = Math.max(Math.abs(a), Math.abs(b));
  return x < 1e150 && x > 1e-150 ? Math.sqrt(a * a + b * b) : Math.hypot(a, b);
}

/**
 * Eigenvalues of the symmetric tridiagonal (d, e) by implicit QL (unsorted, in place in d). If `y` (n×m,
 * row-major) is given, every rotation is applied to its rows so y becomes Zᵀ y, where T = Z Λ Zᵀ. If `record` is
 * given, the rotations are stored there.
 */
export function tridiagonalQL(
  d: Float64Array,
  eIn: Float64Array,
  y?: Float64Array,
  m = 0,
  record?: Rotations,
): void {
  const n = d.length;
  const e = eIn.slice();
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let mm = l;
    while (mm < n) {
      if (Math.abs(e[mm]) <= eps * tst1) break;
      mm++;
    }
    if (mm > l) {
      let iter = 0;
      do {
        if (++iter > 100)
          throw new TlabError('eigh: QL iteration did not converge (matrix contains NaN or Inf?)');
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[mm];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = mm - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (y) {
            const ri = i * m;
            const rj = ri + m;
            for (let k = 0; k < m; k++) {
              const a = y[ri + k];
              const b = y[rj + k];
              y[ri + k] = c * a - s * b;
              y[rj + k] = s * a + c * b;
            }
          }
          if (record) pushRotation(record, i, c, s);
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] = d[l] + f;
    e[l] = 0;
  }
}

/**
 * Applies recorded rotations to the rows of row-major n×m `x` in place: in order (forward, Zᵀ x: what
 * tridiagonalQL does to its `y`) or transposed in reverse order (Z x). In WebAssembly when available.
 */
export async function applyRotations(
  x: Float64Array,
  m: number,
  rot: Rotations,
  forward: boolean,
): Promise<void> {
  const count = rot.count;
  if (count === 0 || m === 0) return;
  const oX = 0;
  const oC = x.length;
  const oS = oC + count;
  const oIdx = oS + count; // in f64 slots; the i32 indices take half of what is reserved
  const done = await withKernels((oIdx + Math.ceil(count / 2)) * 8, (kern) => {
    if (!kern) return false;
    const f64 = new Float64Array(kern.memory.buffer);
    f64.set(x, oX);
    f64.set(rot.c.subarray(0, count), oC);
    f64.set(rot.s.subarray(0, count), oS);
    new Int32Array(kern.memory.buffer, oIdx * 8, count).set(rot.index.subarray(0, count));
    kern.rotate_rows(oX * 8, m, oIdx * 8, oC * 8, oS * 8, count, forward ? 1 : -1);
    x.set(f64.subarray(oX, oX + x.length));
    return true;
  });
  if (done) return;
  const sign = forward ? 1 : -1;
  for (let k = 0; k < count; k++) {
    const r = forward ? k : count - 1 - k;
    const ri = rot.index[r] * m;
    const rj = ri + m;
    const c = rot.c[r];
    const s = sign * rot.s[r];
    for (let q = 0; q < m; q++) {
      const a = x[ri + q];
      const b = x[rj + q];
      x[ri + q] = c * a - s * b;
      x[rj + q] = s * a + c * b;
    }
  }
}

function newRotations(): Rotations {
  return { count: 0, index: new Int32Array(1024), c: new Float64Array(1024), s: new Float64Array(1024) };
}

function ascendingOrder(values: Float64Array): Int32Array {
  const idx = Int32Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[a] - values[b] || a - b);
  return idx;
}

function permuteRows(y: Float64Array, m: number, order: Int32Array): Float64Array {
  const out = new Float64Array(y.length);
  for (let r = 0; r < order.length; r++) out.set(y.subarray(order[r] * m, (order[r] + 1) * m), r * m);
  return out;
}

/** Eigenvalues of a symmetric matrix, ascending. */
export async function eigvalsh(a: Matrix): Promise<Float64Array> {
  checkSquare(a, 'eigvalsh');
  const tri = await tridiagonalizeBlocked(a);
  const d = tri.d.slice();
  tridiagonalQL(d, tri.e);
  return d.sort();
}

export interface EigenProjection {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Vᵀ B (n×m): row i is eigenvector i's inner product with each column of B. */
  projections: Matrix;
}

/** Eigenvalues of symmetric A and the projections Vᵀ B of B's columns onto the eigenvectors. */
export async function eighProject(a: Matrix, b: Matrix): Promise<EigenProjection> {
  checkSquare(a, 'eighProject');
  if (b.rows !== a.rows) throw new TlabError(`eighProject: B has ${b.rows} rows, A is ${a.rows}×${a.rows}`);
  const tri = await tridiagonalizeBlocked(a);
  const y = (await applyQt(tri, b)).data;
  const d = tri.d.slice();
  const rot = newRotations();
  tridiagonalQL(d, tri.e, undefined, 0, rot);
  await applyRotations(y, b.cols, rot, true);
  const order = ascendingOrder(d);
  const values = Float64Array.from(order, (i) => d[i]);
  return { values, projections: matrix(b.rows, b.cols, permuteRows(y, b.cols, order)) };
}

export interface Eigen {
  /** Ascending. */
  values: Float64Array;
  /** Column i is the unit eigenvector of values[i]. */
  vectors: Matrix;
}

/** Full symmetric eigendecomposition A = V diag(values) Vᵀ (O(n³); prefer eighProject/eighTop when possible). */
export async function eigh(a: Matrix): Promise<Eigen> {
  const n = a.rows;
  const eye = matrix(n, n);
  for (let i = 0; i < n; i++) eye.data[i * n + i] = 1;
  const { values, projections } = await eighProject(a, eye);
  // projections = Vᵀ; transpose to columns.
  const v = matrix(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) v.data[j * n + i] = projections.data[i * n + j];
  return { values, vectors: v };
}

/** The k largest eigenpairs, values descending, vectors as the k columns of an n×k matrix. */
export function eighTop(a: Matrix, k: number): Promise<Eigen> {
  return eighTopBy(a, () => k);
}

/**
 * The largest eigenpairs, where `choose` sees all eigenvalues (descending) and returns how many to keep
 * (PCA by explained-variance fraction needs the whole spectrum before it knows k).
 */
export async function eighTopBy(a: Matrix, choose: (descending: Float64Array) => number): Promise<Eigen> {
  checkSquare(a, 'eighTop');
  const n = a.rows;
  const tri = await tridiagonalizeBlocked(a);
  const d = tri.d.slice();
  const rot = newRotations();
  tridiagonalQL(d, tri.e, undefined, 0, rot);
  const order = ascendingOrder(d);
  const descending = Float64Array.from({ length: n }, (_, i) => d[order[n - 1 - i]]);
  const k = choose(descending);
  if (!Number.isInteger(k) || k < 0 || k > n) throw new TlabError(`eighTop: k=${k} must be in [0, ${n}]`);
  // Z[:, S] = G_1 G_2 ... G_m E_S: replay the rotations backwards on the selected unit vectors.
  const x = new Float64Array(n * k);
  for (let c = 0; c < k; c++) x[order[n - 1 - c] * k + c] = 1;
  await applyRotations(x, k, rot, false);
  return { values: descending.slice(0, k), vectors: await applyQ(tri, matrix(n, k, x)) };
}
