/**
 * Qwen2-VL's multimodal rotary positions (M-RoPE, HF get_rope_index + apply_multimodal_rotary_pos_emb), computed in
 * the graph from the token ids, so any batch of prompts needs no extra host input. A text token's three positions
 * (temporal, height, width) are equal and count on from the previous token; an image's merged tokens sit at
 * start + (t, h, w) of their place in the merged grid, and the text after an image continues at start + max(t, h,
 * w) of the grid. So with 1-D positions p (0.., or the cache's per-row positions) the position of a token is
 *   p − (sum over earlier images of tokens − max(t, h, w)) + (image tokens only: its (t, h, w) − its index in the image),
 * all of it exact small-integer float arithmetic (running sums are products with triangular ones matrices).
 * mrope_section splits the rotary frequencies between the three axes (e.g. [16, 24, 24] of 64).
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { TlabError } from '../util/errors.ts';
import { ropeTables } from './rope.ts';
import type { ImageGrid } from './types.ts';

/** Where the image placeholders of a batch take their features: a running count of placeholders. */
export interface ImageTokenIndex {
  /** bool [B, T]: the token is an image placeholder. */
  isImage: Value;
  /** int64 [B, T]: which of the batch's image tokens (images in order) a placeholder receives; 0 elsewhere. */
  index: Value;
}

/** Ones where row ≤ column (inclusive) or row < column (strict): x [.., n] @ it is a running sum over the last axis. */
function triangular(graph: Value['graph'], n: number, strict: boolean): Value {
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = strict ? i + 1 : i; j < n; j++) data[i * n + j] = 1;
  return graph.constant({ dtype: 'float32', shape: [n, n], data });
}

/**
 * The k-th placeholder of the batch (row-major, as HF's masked_scatter) takes image token k (`rowStride` null), or
 * the k-th placeholder of row r takes image token r·rowStride + k (fixed-size images, blank ones padding rows).
 */
export function imageTokenIndex(
  ids: Value,
  imageTokenId: number,
  totalTokens: number,
  rowStride: number | null,
): ImageTokenIndex {
  const [b, t] = ids.shape;
  const isImage = T.equal(ids, T.scalar(ids, imageTokenId));
  const ones = T.cast(isImage, 'float32');
  const running = T.matmul(ones, triangular(ids.graph, t, false)); // (B, T) placeholders up to here
  const rowOffsets =
    rowStride === null
      ? T.reshape(T.matmul(T.reshape(T.reduceSum(ones, -1), [1, b]), triangular(ids.graph, b, true)), [b, 1])
      : T.constant(
          ids.graph,
          'float32',
          [b, 1],
          Array.from({ length: b }, (_, r) => r * rowStride),
        );
  const k = T.minimum(T.maximum(T.add(T.sub(running, 1), rowOffsets), 0), Math.max(totalTokens - 1, 0));
  return { isImage, index: T.cast(k, 'int64') };
}

/** Per image token of the batch (images in order): (t, h, w) minus its index in the image, and the shift after it. */
export function mropeTokenTables(
  grids: readonly ImageGrid[],
  merge: number,
): { adjust: [number[], number[], number[]]; shiftAfter: number[] } {
  const adjust: [number[], number[], number[]] = [[], [], []];
  const shiftAfter: number[] = [];
  for (const [t, h, w] of grids) {
    const gh = h / merge;
    const gw = w / merge;
    const n = t * gh * gw;
    for (let q = 0; q < n; q++) {
      adjust[0].push(Math.floor(q / (gh * gw)) - q);
      adjust[1].push(Math.floor((q % (gh * gw)) / gw) - q);
      adjust[2].push((q % gw) - q);
      shiftAfter.push(q === n - 1 ? n - Math.max(t, gh, gw) : 0);
    }
  }
  return { adjust, shiftAfter };
}

/** Positions fewer than tokens that an image with this grid takes (tokens − max(t, h, w) of the merged grid). */
export function mropeShift(grid: ImageGrid, merge: number): number {
  const [t, h, w] = grid;
  return (t * h * w) / (merge * merge) - Math.max(t, h / merge, w / merge);
}

/** mrope_section, checked: three positive integers summing to half the head dimension. */
export function mropeSection(value: unknown, headDim: number, where: string): [number, number, number] {
  const ok =
    Array.isArray(value) &&
    value.length === 3 &&
    value.every((v) => Number.isInteger(v) && v > 0) &&
    value[0] + value[1] + value[2] === headDim / 2;
  if (!ok)
    throw new TlabError(
      `${where}: mrope_section ${JSON.stringify(value ?? null)} must be three positive integers summing to head_dim / 2 = ${headDim / 2} (Qwen2-VL-2B: [16, 24, 24])`,
    );
  return value as [number, number, number];
}

/**
 * cos/sin [B, 1, T, D] of the M-RoPE positions. `positions` are the 1-D positions ([T] or per row [B, T], int64);
 * `tableRows` bounds them (the sequence or cache length); `images` null means text only (all three axes equal).
 */
export function mropeCosSin(
  invFreq: readonly number[],
  section: readonly [number, number, number],
  positions: Value,
  tableRows: number,
  dtype: Value['dtype'],
  images: { index: ImageTokenIndex; grids: readonly ImageGrid[]; merge: number } | null,
): { cos: Value; sin: Value } {
  const graph = positions.graph;
  const half = invFreq.length;
  const t = positions.shape[positions.rank - 1];
  let pos: Value; // int64 [3, B, T]
  if (images) {
    const { isImage, index } = images.index;
    const [b] = isImage.shape;
    const ones = T.cast(isImage, 'float32');
    const tables = mropeTokenTables(images.grids, images.merge);
    const perToken = (values: readonly number[]) =>
      T.mul(T.gather(T.constant(graph, 'float32', [values.length], values), index, 0), ones); // (B, T)
    const shift = T.matmul(perToken(tables.shiftAfter), triangular(graph, t, true)); // earlier images' shifts
    const base = T.sub(T.cast(positions, 'float32'), shift);
    pos = T.cast(
      T.concat(
        tables.adjust.map((a) => T.reshape(T.add(base, perToken(a)), [1, b, t])),
        0,
      ),
      'int64',
    );
  } else {
    const lead = positions.rank === 2 ? positions.shape[0] : 1;
    pos = T.expand(T.reshape(positions, [1, lead, t]), [3, lead, t]);
  }
  const rows = ropeTables(invFreq, tableRows); // [P, 2·half], both halves equal
  const halfOf = (values: number[]) => {
    const out = new Float64Array(tableRows * half);
    for (let p = 0; p < tableRows; p++)
      for (let j = 0; j < half; j++) out[p * half + j] = values[p * 2 * half + j];
    return T.constant(graph, dtype, [tableRows, half], out);
  };
  // Frequency j follows axis 0 for j < s0, axis 1 for j < s0 + s1, axis 2 after.
  const select = new Float64Array(3 * half);
  for (let j = 0; j < half; j++)
    select[(j < section[0] ? 0 : j < section[0] + section[1] ? 1 : 2) * half + j] = 1;
  const sel = T.constant(graph, dtype, [3, 1, 1, half], select);
  const [, bb] = pos.shape;
  const pick = (table: Value) => {
    const h = T.reduceSum(T.mul(T.gather(table, pos, 0), sel), 0); // (B, T, half)
    return T.reshape(T.concat([h, h], -1), [bb, 1, t, 2 * half]);
  };
  return { cos: pick(halfOf(rows.cos)), sin: pick(halfOf(rows.sin)) };
}
