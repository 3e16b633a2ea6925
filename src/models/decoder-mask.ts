import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { KvCache } from '../nn/kv-cache.ts';

/**
 * The bool attention mask of a decoder step: the cache's own (causal over filled slots) when decoding
 * incrementally, else causal [T, T] combined with the padding mask [B, T] (1 = token) as [B, 1, T, T].
 */
export function decoderMask(
  ids: Value,
  attentionMask: Value | null | undefined,
  cache: KvCache | null,
): Value {
  if (cache) return cache.mask;
  const [b, t] = ids.shape;
  const causal = T.causalMask(ids.graph, t);
  if (!attentionMask) return causal;
  return T.logicalAnd(causal, T.cast(T.reshape(attentionMask, [b, 1, 1, t]), 'bool'));
}
