/**
 * Two passes over a row-major matrix whose rows belong to groups (LEEP's θ and target labels): first the
 * per-group sums of the rows (with each row's sum and minimum, for validation), then each row's dot product with
 * a per-group weight vector computed from those sums. The matrix is copied into WebAssembly memory once and both
 * passes run as SIMD kernels there; without them, the JS loops below. For LEEP at N=5000, Cs=100 the kernels
 * take ~1 ms on the first call, where the JS loops take ~3 ms until V8 has optimised them.
 */
import { dot } from './dot.ts';
import type { Matrix } from './matrix.ts';
import { withKernels } from './wasm.ts';

export interface GroupSums {
  /** groups×cols: Σ of the rows in each group. */
  sums: Float64Array;
  /** Σ_j x[i][j] per row. */
  rowSums: Float64Array;
  /** min(0, min_j x[i][j]) per row (NaN when the row has one). */
  rowMins: Float64Array;
}

/**
 * Runs `weights` on the group sums, then returns x[i] · weights[group[i]] for every row. `weights` may throw
 * (e.g. on an invalid row); it returns a groups×cols array.
 */
export async function groupedRowPasses(
  x: Matrix,
  group: Int32Array,
  groups: number,
  weights: (s: GroupSums) => Float64Array,
): Promise<Float64Array> {
  const { rows: n, cols: m, data } = x;
  const oG = n * m; // f64 slots: x, then the i32 groups (half a slot each), then the rest
  const oAcc = oG + Math.ceil(n / 2);
  const oSums = oAcc + groups * m;
  const oMins = oSums + n;
  const oW = oMins + n;
  const oOut = oW + groups * m;
  const size = oOut + n;
  return withKernels(size * 8, (k) => {
    if (!k || n === 0 || m === 0) return groupedRowPassesJs(x, group, groups, weights);
    const f64 = new Float64Array(k.memory.buffer, 0, size);
    f64.set(data, 0);
    new Int32Array(k.memory.buffer, oG * 8, n).set(group);
    f64.fill(0, oAcc, oSums);
    k.rows_into_groups(0, n, m, oG * 8, oAcc * 8, oSums * 8, oMins * 8);
    const w = weights({
      sums: f64.slice(oAcc, oSums),
      rowSums: f64.slice(oSums, oMins),
      rowMins: f64.slice(oMins, oW),
    });
    f64.set(w, oW);
    k.rows_dot_groups(0, n, m, oG * 8, oW * 8, oOut * 8);
    return f64.slice(oOut, size);
  });
}

function groupedRowPassesJs(
  x: Matrix,
  group: Int32Array,
  groups: number,
  weights: (s: GroupSums) => Float64Array,
): Float64Array {
  const { rows: n, cols: m, data } = x;
  const sums = new Float64Array(groups * m);
  const rowSums = new Float64Array(n);
  const rowMins = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * m;
    const o = group[i] * m;
    let s = 0;
    let min = 0;
    for (let j = 0; j < m; j++) {
      const v = data[r + j];
      s += v;
      min = Math.min(min, v);
      sums[o + j] += v;
    }
    rowSums[i] = s;
    rowMins[i] = min;
  }
  const w = weights({ sums, rowSums, rowMins });
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = dot(data, i * m, w, group[i] * m, m);
  return out;
}
