/**
 * A static-shape key/value cache for incremental decoding. Graphs have static shapes, so the cache is a fixed
 * [B, Hkv, S, D] tensor per layer (S = maximum length) fed in and returned each step; new keys/values are written
 * at `cache_position` with a one-hot product (no scatter), and the mask lets each query see cached positions up
 * to its own (and, with `cache_mask`, only positions that hold real tokens).
 *
 * Graph inputs: `past.{i}.key`, `past.{i}.value` [B, Hkv, S, D] float, `cache_position` [T] int64 (positions of
 * the T new tokens, shared across the batch), `cache_mask` [B, S] int64 (1 where a position holds a token of
 * that row, including the new ones; 0 for left padding and unwritten slots). Outputs: `present.{i}.key|value`.
 *
 * With `rowPositions`, slots and positions part ways: `cache_position` [T] still says which slots the new tokens
 * are written to (and drives the causal mask), while `position_ids` [B, T] int64 gives each row's own token
 * positions, so a left-padded row counts from 0 at its first real token as in Hugging Face. `positions` is then
 * that [B, T] input: models must accept it (a position-embedding gather does; RoPE tables must broadcast as
 * [B, 1, T, D]). `newEntries()` returns only this call's keys/values, so a decode loop can keep the cache on the
 * host and copy [B, Hkv, T, D] out per step instead of the whole [B, Hkv, S, D] `present` tensors.
 */
import type { DType } from '../engine/dtype.ts';
import type { Graph, Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { TlabError } from '../util/errors.ts';

export interface KvCacheShape {
  layers: number;
  batch: number;
  kvHeads: number;
  headDim: number;
  /** Maximum total length S (prompt + generated). */
  maxLength: number;
  /** Number of new tokens per call (the prompt chunk for prefill, 1 for decoding). */
  newTokens: number;
  dtype?: DType;
  /** Per-row positions: adds the `position_ids` [B, T] input, which `positions` then is. Default false. */
  rowPositions?: boolean;
  /**
   * Attend over [past; new] (S + T keys) instead of writing the new keys/values into the past tensors: for a
   * cache kept on the host (`newEntries()`), it saves the full-size write per layer and step. `cache_mask` then
   * marks the tokens held in the past slots; the new tokens' own slots are read from it for padding. `present`
   * outputs are still available. Default false.
   */
  append?: boolean;
}

export class KvCache {
  /** Positions of the new tokens: [T] int64 (the slots), or [B, T] with `rowPositions`. */
  readonly positions: Value;
  /** [T] int64 cache slots the new tokens are written to. */
  readonly slots: Value;
  /** bool [B, 1, T, S]: query t may attend to cache slot s ([B, 1, T, S + T] over [past; new] with `append`). */
  readonly mask: Value;
  private readonly present = new Map<string, Value>();
  private readonly fresh = new Map<string, Value>();

  constructor(
    readonly graph: Graph,
    readonly shape: KvCacheShape,
  ) {
    const { batch, maxLength: s, newTokens: t } = shape;
    this.slots = graph.input('cache_position', 'int64', [t]);
    this.positions = shape.rowPositions ? graph.input('position_ids', 'int64', [batch, t]) : this.slots;
    const all = T.arange(graph, s, 'int64');
    const causal = T.lessEqual(T.reshape(all, [1, s]), T.reshape(this.slots, [t, 1])); // [T, S]
    const filled = T.cast(
      T.reshape(graph.input('cache_mask', 'int64', [batch, s]), [batch, 1, 1, s]),
      'bool',
    );
    const pastMask = T.logicalAnd(T.reshape(causal, [1, 1, t, s]), filled);
    if (!shape.append) {
      this.mask = pastMask;
      return;
    }
    // Past slots before the first new one (written by earlier calls), then the new tokens causally among
    // themselves, minus padding.
    const earlier = T.less(all, T.slice(this.slots, [0], [0], [1])); // [S]
    const past = T.expand(T.logicalAnd(T.reshape(earlier, [1, 1, 1, s]), filled), [batch, 1, t, s]);
    const newFilled = T.reshape(T.gather(T.reshape(filled, [batch, s]), this.slots, 1), [batch, 1, 1, t]);
    const newCausal = T.reshape(T.causalMask(graph, t), [1, 1, t, t]);
    this.mask = T.concat([past, T.logicalAnd(newCausal, newFilled)], -1);
  }

  /**
   * Writes this step's keys/values [B, Hkv, T, D] into layer `layer` and returns the full [B, Hkv, S, D] tensors
   * (with `append`, [past; new] as [B, Hkv, S + T, D]).
   */
  update(layer: number, k: Value, v: Value): { k: Value; v: Value } {
    const { batch, kvHeads, headDim, maxLength: s, newTokens: t } = this.shape;
    const dtype = this.shape.dtype ?? k.dtype;
    const expected = [batch, kvHeads, t, headDim];
    if (k.shape.some((d, i) => d !== expected[i]))
      throw new TlabError(`KvCache: layer ${layer} keys ${k} do not match [${expected.join(', ')}]`);
    // onehot [T, S]: row t selects slot slots[t]
    const onehot = T.oneHot(this.slots, s, dtype);
    const keep = T.sub(1, T.reduceSum(onehot, 0, false)); // [S]: 1 where no new token is written
    const write = (name: 'key' | 'value', x: Value): Value => {
      const past = this.graph.input(`past.${layer}.${name}`, dtype, [batch, kvHeads, s, headDim]);
      const written = T.matmul(T.transpose(onehot, [1, 0]), x); // [B, Hkv, S, D]
      const full = T.add(T.mul(past, T.reshape(keep, [s, 1])), written);
      this.present.set(`present.${layer}.${name}`, full);
      this.fresh.set(`new.${layer}.${name}`, x);
      return this.shape.append ? T.concat([past, x], 2) : full;
    };
    return { k: write('key', k), v: write('value', v) };
  }

  /** The updated caches, to be added to the program's outputs. */
  outputs(): Record<string, Value> {
    if (this.present.size !== 2 * this.shape.layers) {
      throw new TlabError(`KvCache: ${this.present.size / 2} of ${this.shape.layers} layers were updated`);
    }
    return Object.fromEntries(this.present);
  }

  /** Only this call's keys/values, `new.{i}.key|value` [B, Hkv, T, D], for a cache kept on the host. */
  newEntries(): Record<string, Value> {
    if (this.fresh.size !== 2 * this.shape.layers) {
      throw new TlabError(`KvCache: ${this.fresh.size / 2} of ${this.shape.layers} layers were updated`);
    }
    return Object.fromEntries(this.fresh);
  }
}
