/** Scaled dot-product attention with masks and grouped-query heads; head split/merge; rotary embeddings. */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { ForwardContext } from './module.ts';

/** [B, T, H·D] → [B, H, T, D] */
export function splitHeads(x: Value, heads: number): Value {
  const [b, t, hd] = x.shape;
  return T.transpose(T.reshape(x, [b, t, heads, hd / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, D] → [B, T, H·D] */
export function mergeHeads(x: Value): Value {
  const [b, h, t, d] = x.shape;
  return T.reshape(T.transpose(x, [0, 2, 1, 3]), [b, t, h * d]);
}

/** Repeats each of Hkv key/value heads H/Hkv times ([B, Hkv, S, D] → [B, H, S, D]) for grouped-query attention. */
export function repeatKv(x: Value, heads: number): Value {
  const [b, hkv, s, d] = x.shape;
  if (hkv === heads) return x;
  const rep = heads / hkv;
  return T.reshape(T.expand(T.unsqueeze(x, 2), [b, hkv, rep, s, d]), [b, heads, s, d]);
}

export interface AttentionOptions {
  /** bool mask broadcastable to [B, H, T, S]; true = may attend. */
  mask?: Value | null;
  scale?: number;
  dropout?: number;
  ctx?: ForwardContext;
}

/** softmax(q kᵀ · scale, masked) v for q [B, H, T, D], k/v [B, Hkv, S, D]. */
export function scaledDotProductAttention(
  q: Value,
  k: Value,
  v: Value,
  options: AttentionOptions = {},
): Value {
  const heads = q.shape[1];
  const kk = repeatKv(k, heads);
  const vv = repeatKv(v, heads);
  const scale = options.scale ?? 1 / Math.sqrt(q.shape[3]);
  // Scale the queries [.., T, D] rather than the scores [.., T, S]: the same product, fewer elements when S > D.
  let scores = T.matmul(scale === 1 ? q : T.mul(q, scale), T.transposeLast2(kk));
  // Masked scores get the dtype's lowest finite value, as in Hugging Face, so exp() of them is exactly 0 after
  // the max shift. Added as a bias computed on the (small) mask rather than selected with Where over the full
  // [B, H, T, S] scores: a broadcast Add is several times faster on CPU, forward and backward.
  if (options.mask) scores = T.add(scores, maskBias(options.mask, q.dtype));

  let probs = T.softmax(scores, -1);
  const ctx = options.ctx;
  if (ctx?.training && ctx.dropoutKey && (options.dropout ?? 0) > 0)
    probs = T.dropout(probs, options.dropout!, ctx.dropoutKey);
  return T.matmul(probs, vv);
}

/** Dropout that is active only in training mode with a key. */
export function maybeDropout(x: Value, p: number, ctx: ForwardContext): Value {
  return ctx.training && ctx.dropoutKey && p > 0 ? T.dropout(x, p, ctx.dropoutKey) : x;
}

/**
 * cos/sin tables [T, D] for rotary embeddings in the rotate-half convention (Hugging Face Llama/Qwen2): frequency
 * i pairs dimensions i and i + D/2. Computed in float64 on the host, stored as constants.
 */
export function rotaryTables(
  positions: readonly number[],
  dim: number,
  theta: number,
  scaling = 1,
): { cos: number[]; sin: number[] } {
  const half = dim / 2;
  const cos: number[] = [];
  const sin: number[] = [];
  for (const p of positions) {
    for (let j = 0; j < dim; j++) {
      const i = j % half;
      const invFreq = 1 / theta ** ((2 * i) / dim) / scaling;
      cos.push(Math.cos(p * invFreq));
      sin.push(Math.sin(p * invFreq));
    }
  }
  return { cos, sin };
}

/** x·cos + rotate_half(x)·sin for x [B, H, T, D] and tables broadcastable to [B, H, T, D]. */
export function applyRotary(x: Value, cos: Value, sin: Value): Value {
  const d = x.shape[x.rank - 1];
  const [x1, x2] = T.split(x, [d / 2, d / 2], -1);
  const rotated = T.concat([T.neg(x2), x1], -1);
  return T.add(T.mul(x, cos), T.mul(rotated, sin));
}

/** 0 where attending is allowed, the dtype's lowest finite value elsewhere. */
export function maskBias(mask: Value, dtype: Value['dtype']): Value {
  const low = dtype === 'float64' ? -1.7976931348623157e308 : -3.4028234663852886e38;
  return T.where(mask, T.constant(mask.graph, dtype, [], [0]), T.constant(mask.graph, dtype, [], [low]));
}
