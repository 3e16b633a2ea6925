/**
 * Qwen2-VL's vision tower (Hugging Face Qwen2VisionTransformerPretrainedModel): a Conv3d patch embedding over
 * temporal x spatial patches (a matmul of the processor's flattened patches), 2-D rotary position embeddings (a
 * patch's row on one half of the rotary dimensions, its column on the other), pre-LayerNorm blocks whose
 * attention stays inside each image frame (HF's cu_seqlens), and the PatchMerger (LayerNorm, then each 2x2 group
 * of neighbouring patches concatenated and projected to the text width by an MLP). Grids are static: a graph is
 * built for a list of image grids, and the rotary tables and the block-diagonal mask are host constants.
 * Parameters (under the caller's `visual.` scope): `patch_embed.proj.weight` [E, C, T, P, P],
 * `blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `merger.{ln_q,mlp.0,mlp.2}`.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { applyRotary, mergeHeads, scaledDotProductAttention } from '../nn/attention.ts';
import { layerNorm, linear } from '../nn/layers.ts';
import { init, type ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { activation } from './gpt2.ts';
import type { ImageGrid } from './types.ts';

/** The vision_config of a qwen2_vl config.json (Qwen2VLVisionConfig's fields). */
export interface Qwen2VlVisionConfig {
  depth: number;
  embed_dim: number;
  /** Output width of the merger: the text model's hidden size. */
  hidden_size: number;
  hidden_act?: string;
  mlp_ratio?: number;
  num_heads: number;
  in_channels?: number;
  patch_size?: number;
  spatial_merge_size?: number;
  temporal_patch_size?: number;
  initializer_range?: number;
  /** Not a Hugging Face field: the square side of the fixed-size image path (default 448, 16x16 merged tokens). */
  image_size?: number;
}

/** Sizes of the tower, derived and checked once. */
export interface Qwen2VisionDims {
  depth: number;
  embed: number;
  heads: number;
  headDim: number;
  mlpHidden: number;
  out: number;
  channels: number;
  patch: number;
  temporal: number;
  merge: number;
  /** C·T·P·P: the length of one flattened patch. */
  patchDim: number;
  /** Side of the fixed-size path's square images. */
  imageSize: number;
  std: number;
  act: (x: Value) => Value;
}

const LAYER_NORM_EPS = 1e-6;
const ROTARY_THETA = 10000;

export function qwen2VisionDims(c: Qwen2VlVisionConfig, where: string): Qwen2VisionDims {
  const heads = c.num_heads;
  const headDim = c.embed_dim / heads;
  if (!Number.isInteger(headDim))
    throw new TlabError(`${where}: embed_dim ${c.embed_dim} is not divisible by num_heads ${heads}`);
  if (headDim % 4 !== 0)
    throw new TlabError(
      `${where}: head dimension ${headDim} (embed_dim / num_heads) must be a multiple of 4 for the 2-D rotary embedding`,
    );
  const patch = c.patch_size ?? 14;
  const merge = c.spatial_merge_size ?? 2;
  const temporal = c.temporal_patch_size ?? 2;
  const channels = c.in_channels ?? 3;
  const imageSize = c.image_size ?? 448;
  if (imageSize % (patch * merge) !== 0)
    throw new TlabError(
      `${where}: image_size ${imageSize} is not a multiple of patch_size x spatial_merge_size = ${patch * merge}`,
    );
  return {
    depth: c.depth,
    embed: c.embed_dim,
    heads,
    headDim,
    // Python's int(embed_dim * mlp_ratio)
    mlpHidden: Math.trunc(c.embed_dim * (c.mlp_ratio ?? 4)),
    out: c.hidden_size,
    channels,
    patch,
    temporal,
    merge,
    patchDim: channels * temporal * patch * patch,
    imageSize,
    std: c.initializer_range ?? 0.02,
    act: activation(c.hidden_act ?? 'quick_gelu', `${where} hidden_act`),
  };
}

/** Patches t·h·w and merged tokens t·h·w / merge² of a grid; a TlabError when the merger cannot group it. */
export function gridSizes(
  grid: ImageGrid,
  merge: number,
  where: string,
): { patches: number; tokens: number } {
  const [t, h, w] = grid;
  if (![t, h, w].every((v) => Number.isInteger(v) && v > 0) || h % merge !== 0 || w % merge !== 0)
    throw new TlabError(
      `${where}: image grid (t, h, w) = (${grid.join(', ')}) must be positive with h and w multiples of spatial_merge_size ${merge}`,
    );
  return { patches: t * h * w, tokens: (t * h * w) / (merge * merge) };
}

/**
 * Row and column of every patch in the processor's order (HF rot_pos_emb): per frame, merge windows row-major,
 * and inside a window its merge x merge patches row-major.
 */
export function patchPositions(grid: ImageGrid, merge: number): { rows: number[]; cols: number[] } {
  const [t, h, w] = grid;
  const rows: number[] = [];
  const cols: number[] = [];
  for (let f = 0; f < t; f++)
    for (let bh = 0; bh < h / merge; bh++)
      for (let bw = 0; bw < w / merge; bw++)
        for (let i = 0; i < merge; i++)
          for (let j = 0; j < merge; j++) {
            rows.push(bh * merge + i);
            cols.push(bw * merge + j);
          }
  return { rows, cols };
}

/**
 * cos/sin [N, headDim] of the 2-D rotary embedding (rotate-half layout): frequency i of headDim/4 applies to the
 * patch row in the first quarter and to its column in the second, and both halves repeat (HF cat(emb, emb)).
 */
export function visionRotaryTables(
  grids: readonly ImageGrid[],
  dims: Qwen2VisionDims,
): { cos: Float64Array; sin: Float64Array } {
  const d = dims.headDim;
  const quarter = d / 4;
  const inv = Array.from({ length: quarter }, (_, i) => 1 / ROTARY_THETA ** ((2 * i) / (d / 2)));
  const all = grids.map((g) => patchPositions(g, dims.merge));
  const n = all.reduce((s, p) => s + p.rows.length, 0);
  const cos = new Float64Array(n * d);
  const sin = new Float64Array(n * d);
  let k = 0;
  for (const { rows, cols } of all)
    for (let p = 0; p < rows.length; p++, k++)
      for (let j = 0; j < d; j++) {
        const q = j % (d / 2);
        const angle = (q < quarter ? rows[p] : cols[p]) * inv[q % quarter];
        cos[k * d + j] = Math.cos(angle);
        sin[k * d + j] = Math.sin(angle);
      }
  return { cos, sin };
}

/** [N, N] attention mask: a patch attends to the patches of its own frame only (HF's cu_seqlens chunks). */
function frameMask(grids: readonly ImageGrid[], n: number): Uint8Array | null {
  const frames: number[] = [];
  for (const [t, h, w] of grids) for (let f = 0; f < t; f++) frames.push(h * w);
  if (frames.length <= 1) return null;
  const mask = new Uint8Array(n * n);
  let start = 0;
  for (const len of frames) {
    for (let i = start; i < start + len; i++) mask.fill(1, i * n + start, i * n + start + len);
    start += len;
  }
  return mask;
}

export interface Qwen2VisionOutputs {
  /** The patch embeddings, then each block's output, [1, N, E] (HF keeps no such list; for parity tests). */
  hiddenStates: Value[];
  /** [total merged tokens, text hidden]: the merger's output, images in order. */
  features: Value;
}

/** The tower over flattened patches [N, C·T·P·P] of images with these grids (in order); parameters under the current scope. */
export function qwen2VisionTower(
  pb: ParamBuilder,
  dims: Qwen2VisionDims,
  patches: Value,
  grids: readonly ImageGrid[],
): Qwen2VisionOutputs {
  const n = grids.reduce((s, g) => s + gridSizes(g, dims.merge, 'qwen2_vl vision').patches, 0);
  if (patches.rank !== 2 || patches.shape[0] !== n || patches.shape[1] !== dims.patchDim)
    throw new TlabError(
      `qwen2_vl vision: patches ${patches} must be [${n}, ${dims.patchDim}] for image grids ${grids.map((g) => `(${g.join(', ')})`).join(' ')}`,
    );
  const { embed: e, heads, headDim: hd, std } = dims;
  const graph = patches.graph;
  const embedded = pb.scope('patch_embed.proj', () => {
    const w = pb.param('weight', [e, dims.channels, dims.temporal, dims.patch, dims.patch], init.normal(std));
    // A Conv3d whose kernel equals its stride is a matmul of each flattened patch with the flattened kernel.
    return T.matmul(patches, T.transpose(T.reshape(w, [e, dims.patchDim]), [1, 0]));
  });
  const tables = visionRotaryTables(grids, dims);
  const cos = T.constant(graph, patches.dtype, [1, 1, n, hd], tables.cos);
  const sin = T.constant(graph, patches.dtype, [1, 1, n, hd], tables.sin);
  const blocks = frameMask(grids, n);
  const mask = blocks ? graph.constant({ dtype: 'bool', shape: [1, 1, n, n], data: blocks }) : null;

  let h = T.reshape(embedded, [1, n, e]); // (1, N, E)
  const hidden: Value[] = [h];
  for (let i = 0; i < dims.depth; i++) {
    h = pb.scope(`blocks.${i}`, () => {
      const a = layerNorm(pb, 'norm1', h, e, LAYER_NORM_EPS);
      const attn = pb.scope('attn', () => {
        const qkv = linear(pb, 'qkv', a, e, 3 * e, { std }); // (1, N, 3E)
        const heads3 = T.transpose(T.reshape(qkv, [n, 3, heads, hd]), [1, 2, 0, 3]); // (3, H, N, hd)
        const [q, k, v] = T.split(heads3, [1, 1, 1], 0); // (1, H, N, hd) each
        const y = scaledDotProductAttention(applyRotary(q, cos, sin), applyRotary(k, cos, sin), v, {
          mask,
          scale: hd ** -0.5,
        });
        return linear(pb, 'proj', mergeHeads(y), e, e, { std }); // (1, N, E)
      });
      const h1 = T.add(h, attn);
      const m = layerNorm(pb, 'norm2', h1, e, LAYER_NORM_EPS);
      const mlp = pb.scope('mlp', () =>
        linear(pb, 'fc2', dims.act(linear(pb, 'fc1', m, e, dims.mlpHidden, { std })), dims.mlpHidden, e, {
          std,
        }),
      );
      return T.add(h1, mlp);
    });
    hidden.push(h);
  }
  const features = pb.scope('merger', () => {
    const group = e * dims.merge * dims.merge;
    const x = T.reshape(layerNorm(pb, 'ln_q', h, e, LAYER_NORM_EPS), [n / (dims.merge * dims.merge), group]);
    const y = linear(pb, 'mlp.0', x, group, group, { std });
    return linear(pb, 'mlp.2', T.gelu(y), group, dims.out, { std });
  });
  return { hiddenStates: hidden, features };
}

/**
 * Square pixels [B, C, S, S] → flattened patches [B·(S/P)², C·T·P·P] in the processor's order, each image repeated
 * over the temporal patch as the processor does for a still image; every image's grid is (1, S/P, S/P).
 */
export function patchifyPixels(pixels: Value, dims: Qwen2VisionDims): Value {
  const [b, c, hgt, wid] = pixels.shape;
  const { patch: p, merge: m, temporal } = dims;
  if (pixels.rank !== 4 || c !== dims.channels || hgt !== dims.imageSize || wid !== dims.imageSize)
    throw new TlabError(
      `qwen2_vl vision: pixel values ${pixels} must be [B, ${dims.channels}, ${dims.imageSize}, ${dims.imageSize}] (vision_config image_size) on the fixed-size path`,
    );
  const g = dims.imageSize / p;
  // (B, C, g/m, m, P, g/m, m, P) → (B, g/m, g/m, m, m, C, P, P)
  const x = T.transpose(T.reshape(pixels, [b, c, g / m, m, p, g / m, m, p]), [0, 2, 5, 3, 6, 1, 4, 7]);
  const n = b * g * g;
  const frames = T.expand(T.reshape(x, [n, c, 1, p, p]), [n, c, temporal, p, p]);
  return T.reshape(frames, [n, dims.patchDim]);
}
