/**
 * Matrix products. Small ones run in JS (no session start-up, exact same summation order every time); large
 * ones go to onnxruntime's float64 Gemm. The switch is a flop count, adjustable so tests exercise both paths.
 * Symmetric products (Grams) compute only their lower blocks; the trailing updates of the blocked factorisations
 * write into pre-allocated buffers.
 */
import { type Matrix, matrix } from './matrix.ts';
import { type Program, run } from './ort-runtime.ts';

let ortMinFlops = 2e7;

/** Products below this many multiply-adds run in JS; returns the previous value (tests set 0 or Infinity). */
export function setOrtMinFlops(flops: number): number {
  const prev = ortMinFlops;
  ortMinFlops = flops;
  return prev;
}

/**
 * Whether work of this many multiply-adds goes to onnxruntime. `repeated` work (the many calls of a blocked
 * factorisation or an EM loop) switches 20× earlier: its JS cost adds up, while one call costs ~0.1 ms plus
 * copying the result (a 768² update costs ~2 ms there).
 */
export function useOrt(flops: number, repeated = false): boolean {
  return flops >= (repeated ? ortMinFlops / 20 : ortMinFlops);
}

function gemmProgram(transA: number, transB: number): () => Program {
  return () => ({
    nodes: [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['Y'], ints: { transA, transB } }],
    inputs: [
      { name: 'A', type: 'float64', dims: ['a0', 'a1'] },
      { name: 'B', type: 'float64', dims: ['b0', 'b1'] },
    ],
    outputs: [{ name: 'Y', type: 'float64', dims: ['y0', 'y1'] }],
  });
}

async function ortGemm(a: Matrix, b: Matrix, transA: 0 | 1, transB: 0 | 1): Promise<Matrix> {
  const key = `gemm-${transA}${transB}`;
  const out = await run(key, gemmProgram(transA, transB), {
    A: { type: 'float64', data: a.data, dims: [a.rows, a.cols] },
    B: { type: 'float64', data: b.data, dims: [b.rows, b.cols] },
  });
  const y = out.Y;
  return matrix(Number(y.dims[0]), Number(y.dims[1]), y.data as Float64Array);
}

function checkInner(what: string, k1: number, k2: number): void {
  if (k1 !== k2) throw new Error(`${what}: inner dimensions differ (${k1} vs ${k2})`);
}

/**
 * Fᵀ F (or F Fᵀ with `outer`) as the lower blocks F_iᵀ F_j (i >= j) of a split into column (row) blocks: a Gram
 * is symmetric, so with 4 blocks onnxruntime does 10/16 of a full Gemm's work (measured at N=5000, D=768: ~55 ms
 * against ~85 ms for one Gemm). Gemm's transA/transB reads the blocks in place, so no transposed copy is made.
 */
function gramProgram(blocks: number, outer: boolean): () => Program {
  return () => {
    const names = Array.from({ length: blocks }, (_, i) => `C${i}`);
    const nodes: Program['nodes'] = [
      { op: 'Split', inputs: ['F'], outputs: names, ints: { axis: outer ? 0 : 1, num_outputs: blocks } },
    ];
    const outputs: Program['outputs'] = [];
    const ints: Record<string, number> = outer ? { transB: 1 } : { transA: 1 };
    for (let i = 0; i < blocks; i++)
      for (let j = 0; j <= i; j++) {
        nodes.push({ op: 'Gemm', inputs: [`C${i}`, `C${j}`], outputs: [`G${i}_${j}`], ints });
        outputs.push({ name: `G${i}_${j}`, type: 'float64', dims: [`r${i}_${j}`, `c${i}_${j}`] });
      }
    return { nodes, inputs: [{ name: 'F', type: 'float64', dims: ['n', 'd'] }], outputs };
  };
}

function gramBlocks(d: number): number {
  return Math.max(1, Math.min(4, Math.round(d / 128), d));
}

async function ortGram(f: Matrix, outer: boolean): Promise<Matrix> {
  const d = outer ? f.rows : f.cols;
  const blocks = gramBlocks(d);
  const out = await run(`gram-${outer ? 'outer-' : ''}${blocks}`, gramProgram(blocks, outer), {
    F: { type: 'float64', data: f.data, dims: [f.rows, f.cols] },
  });
  return assembleGram(out, d, blocks);
}

/** The full symmetric d×d matrix from the lower blocks G{i}_{j} of gramProgram. */
function assembleGram(
  out: Record<string, { dims: readonly number[]; data: unknown }>,
  d: number,
  blocks: number,
): Matrix {
  const size = Math.ceil(d / blocks); // Split's num_outputs: equal blocks, the last one smaller
  const g = matrix(d, d);
  const o = g.data;
  for (let i = 0; i < blocks; i++)
    for (let j = 0; j <= i; j++) {
      const blk = out[`G${i}_${j}`];
      const rows = Number(blk.dims[0]);
      const cols = Number(blk.dims[1]);
      const src = blk.data as Float64Array;
      const r0 = i * size;
      const c0 = j * size;
      for (let r = 0; r < rows; r++) {
        const cEnd = i === j ? r + 1 : cols; // diagonal blocks: mirror their lower triangle, exactly symmetric
        for (let c = 0; c < cEnd; c++) {
          const v = src[r * cols + c];
          o[(r0 + r) * d + c0 + c] = v;
          o[(c0 + c) * d + r0 + r] = v;
        }
      }
    }
  return g;
}

/** Σ_{i in group k} w_i f_i (G×cols): per-class sums, through onnxruntime as one product when large. */
export async function groupSums(
  f: Matrix,
  group: Int32Array,
  groups: number,
  w?: Float64Array,
): Promise<Float64Array> {
  const n = f.rows;
  const d = f.cols;
  if (n * d * groups >= ortMinFlops) {
    const onehot = matrix(groups, n);
    for (let i = 0; i < n; i++) onehot.data[group[i] * n + i] = w ? w[i] : 1;
    return (await ortGemm(onehot, f, 0, 0)).data;
  }
  const sums = new Float64Array(groups * d);
  for (let i = 0; i < n; i++) {
    const r = i * d;
    const o = group[i] * d;
    const wi = w ? w[i] : 1;
    for (let j = 0; j < d; j++) sums[o + j] += wi * f.data[r + j];
  }
  return sums;
}

/** Fᵀ F (cols × cols), exactly symmetric. */
export async function gram(f: Matrix): Promise<Matrix> {
  if (f.rows * f.cols * f.cols >= ortMinFlops && f.rows > 0) return ortGram(f, false);
  return gramJs(f);
}

/** F Fᵀ (rows × rows), symmetric. */
export async function outerGram(f: Matrix): Promise<Matrix> {
  if (f.rows * f.rows * f.cols >= ortMinFlops && f.cols > 0) return ortGram(f, true);
  return matmulTransBJs(f, f);
}

/** A B. */
export async function matmul(a: Matrix, b: Matrix): Promise<Matrix> {
  checkInner('matmul', a.cols, b.rows);
  if (a.rows * a.cols * b.cols >= ortMinFlops && a.cols > 0) return ortGemm(a, b, 0, 0);
  return matmulJs(a, b);
}

/** A Bᵀ. */
export async function matmulTransB(a: Matrix, b: Matrix): Promise<Matrix> {
  checkInner('matmulTransB', a.cols, b.cols);
  if (a.rows * a.cols * b.rows >= ortMinFlops && a.cols > 0) return ortGemm(a, b, 0, 1);
  return matmulTransBJs(a, b);
}

/** Aᵀ B. */
export async function matmulTransA(a: Matrix, b: Matrix): Promise<Matrix> {
  checkInner('matmulTransA', a.rows, b.rows);
  if (a.rows * a.cols * b.cols >= ortMinFlops && a.rows > 0) return ortGemm(a, b, 1, 0);
  const out = matrix(a.cols, b.cols);
  const o = out.data;
  for (let i = 0; i < a.rows; i++) {
    const ar = i * a.cols;
    const br = i * b.cols;
    for (let p = 0; p < a.cols; p++) {
      const x = a.data[ar + p];
      if (x === 0) continue;
      const orow = p * b.cols;
      for (let q = 0; q < b.cols; q++) o[orow + q] += x * b.data[br + q];
    }
  }
  return out;
}

function gramJs(f: Matrix): Matrix {
  const { rows, cols, data } = f;
  const g = matrix(cols, cols);
  const o = g.data;
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) {
      const x = data[r + j];
      if (x === 0) continue;
      const orow = j * cols;
      for (let k = 0; k <= j; k++) o[orow + k] += x * data[r + k];
    }
  }
  for (let j = 0; j < cols; j++) for (let k = 0; k < j; k++) o[k * cols + j] = o[j * cols + k];
  return g;
}

function matmulJs(a: Matrix, b: Matrix): Matrix {
  const out = matrix(a.rows, b.cols);
  const o = out.data;
  const n = b.cols;
  for (let i = 0; i < a.rows; i++) {
    const ar = i * a.cols;
    const orow = i * n;
    for (let p = 0; p < a.cols; p++) {
      const x = a.data[ar + p];
      if (x === 0) continue;
      const br = p * n;
      for (let j = 0; j < n; j++) o[orow + j] += x * b.data[br + j];
    }
  }
  return out;
}

function matmulTransBJs(a: Matrix, b: Matrix): Matrix {
  const out = matrix(a.rows, b.rows);
  const o = out.data;
  const k = a.cols;
  for (let i = 0; i < a.rows; i++) {
    const ar = i * k;
    for (let j = 0; j < b.rows; j++) {
      const br = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a.data[ar + p] * b.data[br + p];
      o[i * b.rows + j] = s;
    }
  }
  return out;
}

const trailingProgram = (): Program => ({
  nodes: [
    { op: 'Slice', inputs: ['T', 'start', 'end'], outputs: ['C'] },
    {
      op: 'Gemm',
      inputs: ['X', 'Y', 'C'],
      outputs: ['Z'],
      ints: { transB: 1 },
      floats: { alpha: -1, beta: 1 },
    },
  ],
  inputs: [
    { name: 'T', type: 'float64', dims: ['m', 'm'] },
    { name: 'start', type: 'int64', dims: [2] },
    { name: 'end', type: 'int64', dims: [2] },
    { name: 'X', type: 'float64', dims: ['p', 'k'] },
    { name: 'Y', type: 'float64', dims: ['p', 'k'] },
  ],
  outputs: [{ name: 'Z', type: 'float64', dims: ['p', 'p'] }],
});

/**
 * T[s:, s:] − X Yᵀ for a row-major m×m `t` and (m−s)×k row-major X, Y: the trailing update of the blocked
 * factorisations (Cholesky, tridiagonalisation). Writes the contiguous (m−s)×(m−s) result into the start of
 * `out` (which must not overlap `t`) and returns that view; `t` is left alone.
 */
export async function trailingUpdate(
  t: Float64Array,
  m: number,
  s: number,
  x: Float64Array,
  y: Float64Array,
  k: number,
  out: Float64Array,
): Promise<Float64Array> {
  const p = m - s;
  const z = out.subarray(0, p * p);
  if (useOrt(p * p * k, true) && k > 0) {
    await run(
      'trailing-update',
      trailingProgram,
      {
        T: { type: 'float64', data: t.subarray(0, m * m), dims: [m, m] },
        start: { type: 'int64', data: BigInt64Array.of(BigInt(s), BigInt(s)), dims: [2] },
        end: { type: 'int64', data: BigInt64Array.of(BigInt(m), BigInt(m)), dims: [2] },
        X: { type: 'float64', data: x.subarray(0, p * k), dims: [p, k] },
        Y: { type: 'float64', data: y.subarray(0, p * k), dims: [p, k] },
      },
      { Z: { data: z, dims: [p, p] } },
    );
    return z;
  }
  for (let i = 0; i < p; i++) {
    const ti = (s + i) * m + s;
    const xi = i * k;
    for (let j = 0; j < p; j++) {
      const yj = j * k;
      let acc = 0;
      for (let q = 0; q < k; q++) acc += x[xi + q] * y[yj + q];
      z[i * p + j] = t[ti + j] - acc;
    }
  }
  return z;
}
