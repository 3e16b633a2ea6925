/**
 * Exact k-nearest neighbours (Euclidean). Large problems rank candidates with onnxruntime (‖x‖² − 2q·x and TopK
 * inside one graph, so only k indices per row leave it), then recompute the candidates' distances exactly in JS
 * and order them by (distance, index). That makes the result independent of Gemm rounding.
 */
import { TlabError } from '../util/errors.ts';
import type { Matrix } from './matrix.ts';
import { type Program, run } from './ort-runtime.ts';

export interface KnnOptions {
  /** Leave each row out of its own neighbour list (leave-one-out). Default true. */
  excludeSelf?: boolean;
  /** Rows scored per onnxruntime call. */
  blockRows?: number;
  /** Below this many N²·D multiply-adds everything runs in JS. */
  ortMinFlops?: number;
}

export interface KnnResult {
  k: number;
  /** N×k neighbour indices, nearest first. */
  indices: Int32Array;
  /** N×k squared distances. */
  distances: Float64Array;
}

/** Squared Euclidean distance between rows i and j of x. */
export function squaredDistance(x: Matrix, i: number, j: number): number {
  const d = x.cols;
  const a = i * d;
  const b = j * d;
  let s = 0;
  for (let p = 0; p < d; p++) {
    const t = x.data[a + p] - x.data[b + p];
    s += t * t;
  }
  return s;
}

/** Full N×N matrix of squared Euclidean distances (exact differences; for small N). */
export function pairwiseSquaredDistances(x: Matrix): Float64Array {
  const n = x.rows;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < i; j++) {
      const v = squaredDistance(x, i, j);
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
  return out;
}

function selectNearest(
  x: Matrix,
  i: number,
  candidates: ArrayLike<number>,
  k: number,
  excludeSelf: boolean,
  indices: Int32Array,
  distances: Float64Array,
): void {
  const list: { j: number; d: number }[] = [];
  for (let c = 0; c < candidates.length; c++) {
    const j = candidates[c];
    if (excludeSelf && j === i) continue;
    list.push({ j, d: squaredDistance(x, i, j) });
  }
  list.sort((a, b) => a.d - b.d || a.j - b.j);
  for (let c = 0; c < k; c++) {
    indices[i * k + c] = list[c].j;
    distances[i * k + c] = list[c].d;
  }
}

const MARGIN = 8;

export async function knn(x: Matrix, k: number, options: KnnOptions = {}): Promise<KnnResult> {
  const n = x.rows;
  const excludeSelf = options.excludeSelf ?? true;
  const available = excludeSelf ? n - 1 : n;
  if (!Number.isInteger(k) || k < 1 || k > available)
    throw new TlabError(`knn: k=${k} must be an integer in [1, ${available}] for ${n} rows`);
  const indices = new Int32Array(n * k);
  const distances = new Float64Array(n * k);
  const minFlops = options.ortMinFlops ?? 5e7;
  const take = Math.min(n, k + (excludeSelf ? 1 : 0) + MARGIN);
  if (n * n * x.cols < minFlops || take === n) {
    const all = Int32Array.from({ length: n }, (_, j) => j);
    for (let i = 0; i < n; i++) selectNearest(x, i, all, k, excludeSelf, indices, distances);
    return { k, indices, distances };
  }
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let p = 0; p < x.cols; p++) s += x.data[i * x.cols + p] ** 2;
    norms[i] = s;
  }
  const block = options.blockRows ?? Math.max(1, Math.min(n, Math.floor(4e6 / n)));
  const kTensor = BigInt64Array.of(BigInt(take));
  for (let r0 = 0; r0 < n; r0 += block) {
    const r1 = Math.min(n, r0 + block);
    const out = await run('knn-topk', knnProgram, {
      Q: { type: 'float64', data: x.data.subarray(r0 * x.cols, r1 * x.cols), dims: [r1 - r0, x.cols] },
      X: { type: 'float64', data: x.data, dims: [n, x.cols] },
      N2: { type: 'float64', data: norms, dims: [1, n] },
      K: { type: 'int64', data: kTensor, dims: [1] },
    });
    const idx = out.I.data as BigInt64Array;
    const cand = new Int32Array(take);
    for (let i = r0; i < r1; i++) {
      const base = (i - r0) * take;
      for (let c = 0; c < take; c++) cand[c] = Number(idx[base + c]);
      selectNearest(x, i, cand, k, excludeSelf, indices, distances);
    }
  }
  return { k, indices, distances };
}

function knnProgram(): Program {
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
      { name: 'Q', type: 'float64', dims: ['b', 'd'] },
      { name: 'X', type: 'float64', dims: ['n', 'd'] },
      { name: 'N2', type: 'float64', dims: [1, 'n'] },
      { name: 'K', type: 'int64', dims: [1] },
    ],
    outputs: [
      { name: 'V', type: 'float64', dims: ['b', 'k'] },
      { name: 'I', type: 'int64', dims: ['b', 'k'] },
    ],
  };
}
