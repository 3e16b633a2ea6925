/**
 * Dropout with a counter-based mask: each element's keep decision is a hash of (element index, key), where the
 * key comes from a seed fed per step. The mask is an ordinary graph value, so forward and backward share it, and
 * it is reproducible from the seed alone (exact resume), unlike ONNX's stateful Dropout/Random* ops.
 * A key may carry a third value, the micro-batch index m: element i of a micro-batch then hashes as element
 * m·numel + i of the whole batch, so with batch-major tensors a row's mask depends on its row in the whole
 * batch and gradient accumulation (4 × 8 rows) draws the same masks as one batch of 32.
 */

import { TlabError } from '../../util/errors.ts';
import type { Value } from '../ir/graph.ts';
import { product } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { cast, div, mul } from './elementwise.ts';
import { defineOp } from './registry.ts';

const M32 = 0xffffffff;
// Multipliers below 2^31 keep every int64 product of a 32-bit value exact (no signed overflow in the kernel).
const MIX1 = 0x7feb352d;
const MIX2 = 0x5bd1e995;

/** The 32-bit finalizer used by the mask, in JS (the reference the graph is tested against). */
export function mix32(x: number): number {
  x >>>= 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Number((BigInt(x) * BigInt(MIX1)) & 0xffffffffn);
  x = (x ^ (x >>> 15)) >>> 0;
  x = Number((BigInt(x) * BigInt(MIX2)) & 0xffffffffn);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Per-site salt, so every dropout in a graph draws an independent mask from the same key. */
export function siteSalt(site: number): number {
  return mix32((site * 2654435761 + 1) >>> 0);
}

/**
 * Keep decisions for `n` elements under the key (k1, k2) at dropout site `site`, as the graph computes them;
 * `offset` is the index of the first element (micro-batch index × n for a key's third value).
 */
export function dropoutMaskReference(
  n: number,
  k1: number,
  k2: number,
  p: number,
  site = 0,
  offset = 0,
): Uint8Array {
  const out = new Uint8Array(n);
  const k2s = (k2 ^ siteSalt(site)) >>> 0;
  for (let i = 0; i < n; i++) {
    const h = mix32((mix32((i + k1 + offset) % 2 ** 32) ^ k2s) >>> 0);
    out[i] = h / 2 ** 32 >= p ? 1 : 0;
  }
  return out;
}

/** The dropout key (two 32-bit halves) for a training step, derived from the run's seed (JS side). */
export function dropoutKey(seed: number, step: number): [number, number] {
  const a = mix32((mix32(seed >>> 0) ^ mix32((step * 2 + 1) >>> 0)) >>> 0);
  return [a, mix32((a ^ 0x9e3779b9) >>> 0)];
}

defineOp('DropoutMask', {
  infer: (_inputs, p) => [{ dtype: 'bool', shape: p.shape as number[] }],
  emit: (ctx, n) => {
    const shape = n.params.shape as number[];
    const p = n.params.p as number;
    const key = ctx.name(n.inputs[0]); // int64 [2]: k1, k2, or [3]: k1, k2, micro-batch index
    let k1 = ctx.temp('k1');
    const k2 = ctx.temp('k2');
    ctx.node('Gather', [key, ctx.int64([0], [])], [k1], [attr.int('axis', 0)]);
    if (n.inputs[0].shape[0] === 3) {
      // Element i of micro-batch m is element m·numel + i of the whole batch.
      const micro = ctx.temp('micro');
      ctx.node('Gather', [key, ctx.int64([2], [])], [micro], [attr.int('axis', 0)]);
      const offset = ctx.temp('offset');
      ctx.node('Mul', [micro, ctx.int64([product(shape)], [])], [offset]);
      const shifted = ctx.temp('k1m');
      ctx.node('Add', [k1, offset], [shifted]);
      k1 = shifted;
    }
    const k2raw = ctx.temp('k2raw');
    ctx.node('Gather', [key, ctx.int64([1], [])], [k2raw], [attr.int('axis', 0)]);
    ctx.node('BitwiseXor', [k2raw, ctx.int64([siteSalt(n.params.site as number)], [])], [k2]);
    const idx = ctx.temp('idx');
    ctx.node('Range', [ctx.int64([0], []), ctx.int64([product(shape)], []), ctx.int64([1], [])], [idx]);
    const m32 = ctx.int64([M32], []);
    const binary = (op: string, a: string, b: string): string => {
      const out = ctx.temp(op);
      ctx.node(op, [a, b], [out]);
      return out;
    };
    const fmix = (x: string): string => {
      let h = binary('BitwiseXor', x, binary('Div', x, ctx.int64([2 ** 16], [])));
      h = binary('BitwiseAnd', binary('Mul', h, ctx.int64([MIX1], [])), m32);
      h = binary('BitwiseXor', h, binary('Div', h, ctx.int64([2 ** 15], [])));
      h = binary('BitwiseAnd', binary('Mul', h, ctx.int64([MIX2], [])), m32);
      return binary('BitwiseXor', h, binary('Div', h, ctx.int64([2 ** 16], [])));
    };
    const h = fmix(binary('BitwiseXor', fmix(binary('BitwiseAnd', binary('Add', idx, k1), m32)), k2));
    // keep ⇔ h / 2^32 >= p ⇔ h >= ceil(p · 2^32)
    const keep = ctx.temp('keep');
    ctx.node('GreaterOrEqual', [h, ctx.int64([Math.ceil(p * 2 ** 32)], [])], [keep]);
    ctx.node('Reshape', [keep, ctx.int64(shape)], [ctx.name(n.outputs[0])]);
  },
  nondifferentiable: true,
});

/** A bool keep-mask of `shape` with drop probability p, from an int64 [2] (or [3], with a micro-batch index) key. */
export function dropoutMask(key: Value, shape: readonly number[], p: number, site?: number): Value {
  if (key.dtype !== 'int64' || key.shape.length !== 1 || (key.shape[0] !== 2 && key.shape[0] !== 3)) {
    throw new TlabError(`dropoutMask: key must be int64 [2] or [3], got ${key}`);
  }
  const s = site ?? key.graph.nodes.filter((n) => n.op === 'DropoutMask').length;
  return key.graph.addNode('DropoutMask', [key], { shape: [...shape], p, site: s }, [
    { dtype: 'bool', shape: [...shape] },
  ])[0];
}

/** Inverted dropout: zero elements with probability p and scale the rest by 1/(1−p). */
export function dropout(x: Value, p: number, key: Value): Value {
  if (!(p >= 0 && p < 1)) throw new TlabError(`dropout: probability must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const mask = cast(dropoutMask(key, x.shape, p), x.dtype);
  return div(mul(x, mask), 1 - p);
}
