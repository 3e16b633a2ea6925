/**
 * Neighbour tables as DADApy stores them: N×(maxk+1) Euclidean distances and indices, column 0 the point itself
 * (distance 0), then its maxk nearest neighbours in order, ties broken by index. Every estimator here reads r_k
 * as `distances[i*(maxk+1) + k]`.
 *
 * Small problems are computed exactly in JS. Large ones rank candidates with a float32 product through
 * onnxruntime (‖x‖² − 2q·x and TopK in one graph, so only maxk + margin indices per row leave it; float32 runs
 * about twice as fast as float64 there), then recompute the candidates' distances in float64 and order them. A
 * row is accepted only if its maxk-th exact distance is below what any non-candidate could have given the float32
 * error; otherwise that row is scanned exactly. The data are centred first (distances do not change) so the
 * ‖q‖² + ‖x‖² − 2q·x form keeps its precision.
 */
import ort from 'onnxruntime-node';
import { dot } from '../linalg/dot.ts';
import { columnMeans, type Matrix } from '../linalg/matrix.ts';
import { type Program, session } from '../linalg/ort-runtime.ts';
import { TlabError } from '../util/errors.ts';
import { checkPoints } from './points.ts';

export interface NeighbourTable {
  /** Rows (points). */
  n: number;
  /** Neighbours per row, not counting the point itself. */
  maxk: number;
  /** N×(maxk+1) Euclidean distances; column 0 is 0. */
  distances: Float64Array;
  /** N×(maxk+1) indices; column 0 is the row itself. */
  indices: Int32Array;
}

export interface NeighbourOptions {
  /** Name of the input in errors. */
  name?: string;
  /** Below this many N²·D multiply-adds everything runs in JS (exactly). Default 5e7. */
  jsMaxFlops?: number;
  /** Extra float32 candidates per row beyond maxk + 1. Default max(8, maxk/8). */
  margin?: number;
}

export interface NeighbourStats {
  /** Rows whose float32 ranking could not be certified and were scanned exactly. */
  rescanned: number;
}

/** r_k of row i. */
export function distanceAt(t: NeighbourTable, i: number, k: number): number {
  return t.distances[i * (t.maxk + 1) + k];
}

/** Index of the k-th neighbour of row i (k = 0 is i). */
export function neighbourAt(t: NeighbourTable, i: number, k: number): number {
  return t.indices[i * (t.maxk + 1) + k];
}

/** The first `k` neighbours of every row of a larger table. */
export function truncateTable(t: NeighbourTable, k: number): NeighbourTable {
  if (k > t.maxk)
    throw new TlabError(`neighbour table holds ${t.maxk} neighbours per point, ${k} were asked for`);
  if (k === t.maxk) return t;
  const w = t.maxk + 1;
  const distances = new Float64Array(t.n * (k + 1));
  const indices = new Int32Array(t.n * (k + 1));
  for (let i = 0; i < t.n; i++) {
    distances.set(t.distances.subarray(i * w, i * w + k + 1), i * (k + 1));
    indices.set(t.indices.subarray(i * w, i * w + k + 1), i * (k + 1));
  }
  return { n: t.n, maxk: k, distances, indices };
}

/**
 * A table from given neighbour indices (N×(k+1), column 0 self, e.g. another tool's kNN output); distances are
 * unknown (NaN), so only index-based measures (overlaps, ADP's neighbourhoods) can use it.
 */
export function tableFromIndices(indices: Int32Array, n: number, name = 'neighbour indices'): NeighbourTable {
  if (n <= 0 || indices.length % n !== 0 || indices.length / n < 2)
    throw new TlabError(`${name}: ${indices.length} values do not form ${n} rows of at least 2 columns`);
  const w = indices.length / n;
  for (let i = 0; i < n; i++) {
    if (indices[i * w] !== i)
      throw new TlabError(
        `${name}: row ${i} starts with ${indices[i * w]}; column 0 must be the point itself`,
      );
    for (let k = 1; k < w; k++) {
      const j = indices[i * w + k];
      if (!Number.isInteger(j) || j < 0 || j >= n)
        throw new TlabError(`${name}: row ${i} column ${k} is ${j}, outside 0..${n - 1}`);
    }
  }
  return { n, maxk: w - 1, distances: new Float64Array(indices.length).fill(Number.NaN), indices };
}

/** Exact squared distance between rows i and j of (centred) data. */
function exactSquared(x: Float64Array, d: number, i: number, j: number): number {
  const a = i * d;
  const b = j * d;
  let s0 = 0;
  let s1 = 0;
  let p = 0;
  for (; p + 1 < d; p += 2) {
    const t0 = x[a + p] - x[b + p];
    const t1 = x[a + p + 1] - x[b + p + 1];
    s0 += t0 * t0;
    s1 += t1 * t1;
  }
  if (p < d) {
    const t = x[a + p] - x[b + p];
    s0 += t * t;
  }
  return s0 + s1;
}

/** Candidates (index, squared distance), self excluded, sorted by (distance, index); writes row i. */
function writeRow(
  table: NeighbourTable,
  i: number,
  cand: Int32Array,
  sq: Float64Array,
  count: number,
  order: Int32Array,
): void {
  for (let c = 0; c < count; c++) order[c] = c;
  const o = order.subarray(0, count);
  o.sort((a, b) => sq[a] - sq[b] || cand[a] - cand[b]);
  const w = table.maxk + 1;
  table.indices[i * w] = i;
  table.distances[i * w] = 0;
  for (let k = 0; k < table.maxk; k++) {
    table.indices[i * w + k + 1] = cand[o[k]];
    table.distances[i * w + k + 1] = Math.sqrt(sq[o[k]]);
  }
}

function exactRow(
  x: Float64Array,
  n: number,
  d: number,
  i: number,
  table: NeighbourTable,
  buf: { cand: Int32Array; sq: Float64Array; order: Int32Array; sorted: Float64Array },
): void {
  let c = 0;
  for (let j = 0; j < n; j++) {
    if (j === i) continue;
    buf.sq[c] = exactSquared(x, d, i, j);
    c++;
  }
  // the maxk-th smallest distance (a native numeric sort), then only the points within it are ordered
  const sorted = buf.sorted.subarray(0, c);
  sorted.set(buf.sq.subarray(0, c));
  sorted.sort();
  const kth = sorted[table.maxk - 1];
  let m = 0;
  for (let j = 0, k = 0; j < n; j++) {
    if (j === i) continue;
    const v = buf.sq[k++];
    if (v <= kth) {
      buf.cand[m] = j;
      buf.order[m] = m;
      sorted[m] = v;
      m++;
    }
  }
  writeRow(table, i, buf.cand, sorted, m, buf.order);
}

const F32_EPS = 2 ** -23;

function rankProgram(): Program {
  return {
    nodes: [
      {
        op: 'Gemm',
        inputs: ['Q', 'X', 'N2'],
        outputs: ['S'],
        ints: { transB: 1 },
        floats: { alpha: -2, beta: 1 },
      },
      { op: 'TopK', inputs: ['S', 'K'], outputs: ['V', 'I'], ints: { axis: -1, largest: 0, sorted: 1 } },
    ],
    inputs: [
      { name: 'Q', type: 'float32', dims: ['b', 'd'] },
      { name: 'X', type: 'float32', dims: ['n', 'd'] },
      { name: 'N2', type: 'float32', dims: [1, 'n'] },
      { name: 'K', type: 'int64', dims: [1] },
    ],
    outputs: [
      { name: 'V', type: 'float32', dims: ['b', 'k'] },
      { name: 'I', type: 'int64', dims: ['b', 'k'] },
    ],
  };
}

/**
 * The maxk nearest neighbours of every row (Euclidean), self in column 0. Needs N ≥ maxk + 1 rows; exact
 * duplicates should be removed first (they are allowed, but give zero distances).
 */
export async function neighbourTable(
  x: Matrix,
  maxk: number,
  options: NeighbourOptions = {},
  stats?: NeighbourStats,
): Promise<NeighbourTable> {
  const name = options.name ?? 'features';
  if (!Number.isInteger(maxk) || maxk < 1)
    throw new TlabError(`${name}: the number of neighbours must be a positive integer, got ${maxk}`);
  checkPoints(x, { name, minRows: maxk + 1, what: `${maxk} neighbours per point` });
  const n = x.rows;
  const d = x.cols;
  const mean = columnMeans(x);
  const c = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) c[i * d + j] = x.data[i * d + j] - mean[j];
  const table: NeighbourTable = {
    n,
    maxk,
    distances: new Float64Array(n * (maxk + 1)),
    indices: new Int32Array(n * (maxk + 1)),
  };
  const full = {
    cand: new Int32Array(n),
    sq: new Float64Array(n),
    order: new Int32Array(n),
    sorted: new Float64Array(n),
  };
  const margin = options.margin ?? Math.max(8, Math.ceil(maxk / 8));
  const take = maxk + 1 + margin;
  if (n * n * d < (options.jsMaxFlops ?? 5e7) || take >= n) {
    for (let i = 0; i < n; i++) exactRow(c, n, d, i, table, full);
    return table;
  }

  const norms = new Float64Array(n);
  let maxNorm = 0;
  for (let i = 0; i < n; i++) {
    norms[i] = dot(c, i * d, c, i * d, d);
    if (norms[i] > maxNorm) maxNorm = norms[i];
  }
  const c32 = Float32Array.from(c);
  const n32 = Float32Array.from(norms);
  const s = await session('geometry-rank-f32', rankProgram);
  const block = Math.max(1, Math.min(n, Math.floor(4e6 / n)));
  const kTensor = new ort.Tensor('int64', BigInt64Array.of(BigInt(take)), [1]);
  const xTensor = new ort.Tensor('float32', c32, [n, d]);
  const nTensor = new ort.Tensor('float32', n32, [1, n]);
  const cand = new Int32Array(take);
  const sq = new Float64Array(take);
  const order = new Int32Array(take);
  let rescanned = 0;
  for (let r0 = 0; r0 < n; r0 += block) {
    const r1 = Math.min(n, r0 + block);
    const out = await s.run({
      Q: new ort.Tensor('float32', c32.subarray(r0 * d, r1 * d), [r1 - r0, d]),
      X: xTensor,
      N2: nTensor,
      K: kTensor,
    });
    const idx = out.I.data as BigInt64Array;
    const val = out.V.data as Float32Array;
    for (let i = r0; i < r1; i++) {
      const base = (i - r0) * take;
      const nq = norms[i];
      let count = 0;
      let observed = 0;
      for (let t = 0; t < take; t++) {
        const j = Number(idx[base + t]);
        if (j === i) continue;
        let v = nq + norms[j] - 2 * dot(c, i * d, c, j * d, d);
        // Near-duplicates: the expanded form loses its digits; take the differences.
        if (v < 1e-8 * (nq + norms[j])) v = exactSquared(c, d, i, j);
        if (v < 0) v = 0;
        observed = Math.max(observed, Math.abs(val[base + t] + nq - v));
        cand[count] = j;
        sq[count] = v;
        count++;
      }
      writeRow(table, i, cand, sq, count, order);
      // Any point outside the candidates scored at least the last candidate's float32 value.
      const bound = Math.max(4 * observed, 16 * F32_EPS * (nq + maxNorm + 2 * Math.sqrt(nq * maxNorm)));
      const lowest = val[base + take - 1] + nq - bound;
      const kth = table.distances[i * (maxk + 1) + maxk];
      if (count < maxk || kth * kth > lowest) {
        exactRow(c, n, d, i, table, full);
        rescanned++;
      }
    }
  }
  if (stats) stats.rescanned = rescanned;
  return table;
}
