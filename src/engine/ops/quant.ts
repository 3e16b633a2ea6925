/**
 * 4-bit weights inside the graph (QLoRA's frozen base): codes packed two per byte plus one float scale per block,
 * in two formats. `int4`: uniform levels (code − 8) · scale, low nibble first, codes shaped [N, K/block, block/2]
 * (onnxruntime's MatMulNBits layout). `nf4`: bitsandbytes' NormalFloat levels · absmax, high nibble first, codes
 * flat [N·K/2] (bitsandbytes' and MatMulBnb4's layout). Scales hold one float per block, blocks in row-major order
 * (nf4 [N·K/block, 1]; int4 [N, K/block], the shape MatMulNBits checks).
 *
 * matmul4Bit runs x · Wᵀ with onnxruntime's fused CPU kernels (MatMulNBits, MatMulBnb4: no float weight is ever
 * stored), and its VJP dequantizes W explicitly (dequantize4Bit) for dx = dy · W. The two are different ops, so
 * onnxruntime's common-subexpression pass cannot merge them into one float weight kept alive from the forward pass
 * to the backward pass; and dequantize4Bit starts with a DequantizeLinear, which onnxruntime's constant folding
 * leaves alone, so the float weight is not precomputed into a session initializer either (both measured: see
 * bench/qlora.ts). Float64 inputs (gradient checks) take the explicit path both ways.
 */
import type { Node, Params, TensorType, Value } from '../ir/graph.ts';
import { attr } from '../onnx/model.ts';
import { cast } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { transpose } from './movement.ts';
import { apply1, defineOp, type EmitContext, shapeError } from './registry.ts';

export type FourBitFormat = 'int4' | 'nf4';

/** bitsandbytes' NF4 levels (QLoRA, Dettmers et al. 2023): quantiles of N(0, 1) scaled to [−1, 1]. */
export const NF4_LEVELS: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

export interface FourBitParams {
  format: FourBitFormat;
  /** The weight's [rows, cols] = [N (out), K (in)]. */
  rows: number;
  cols: number;
  blockSize: number;
}

function paramsOf(p: Params): FourBitParams {
  return p as unknown as FourBitParams;
}

/** Checks codes/scales against the weight shape and block size; returns the number of blocks. */
function checkQuantized(op: string, inputs: readonly Value[], p: FourBitParams): number {
  const [codes, scales] = inputs;
  const n = p.rows * p.cols;
  if (codes.dtype !== 'uint8') throw shapeError(op, inputs, 'codes must be uint8 (two 4-bit codes per byte)');
  if (scales.dtype !== 'float32') throw shapeError(op, inputs, 'scales must be float32');
  if (p.blockSize < 2 || p.blockSize % 2 !== 0 || n % p.blockSize !== 0)
    throw shapeError(op, inputs, `block size ${p.blockSize} must be even and divide the ${n} weights`);
  if (p.format === 'int4' && p.cols % p.blockSize !== 0)
    throw shapeError(
      op,
      inputs,
      `int4 blocks run along rows: block size ${p.blockSize} must divide ${p.cols}`,
    );
  if (codes.size * 2 !== n)
    throw shapeError(op, inputs, `codes hold ${codes.size * 2} values, the weight ${n}`);
  const blocks = n / p.blockSize;
  if (scales.size !== blocks) throw shapeError(op, inputs, `${scales.size} scales for ${blocks} blocks`);
  return blocks;
}

/** [256, 2]: the two levels a byte holds, in weight order (int4: low nibble first; nf4: high nibble first). */
function pairTable(format: FourBitFormat): Float32Array {
  const t = new Float32Array(512);
  for (let b = 0; b < 256; b++) {
    const hi = b >> 4;
    const lo = b & 15;
    const [first, second] = format === 'int4' ? [lo, hi] : [hi, lo];
    t[2 * b] = format === 'int4' ? first - 8 : NF4_LEVELS[first];
    t[2 * b + 1] = format === 'int4' ? second - 8 : NF4_LEVELS[second];
  }
  return t;
}

/** Emits the explicit dequantization of codes/scales to a float32 [rows, cols] tensor named `out`. */
function emitDequantize(ctx: EmitContext, codes: Value, scales: Value, p: FourBitParams, out: string): void {
  const blocks = (p.rows * p.cols) / p.blockSize;
  // DequantizeLinear (scale 1) turns the bytes into floats 0..255; onnxruntime does not constant-fold it.
  const asFloat = ctx.temp('bytes');
  ctx.node(
    'DequantizeLinear',
    [ctx.name(codes), ctx.constant({ dtype: 'float32', shape: [], data: Float32Array.of(1) })],
    [asFloat],
  );
  const index = ctx.temp('byte');
  ctx.node('Cast', [asFloat], [index], [attr.int('to', 6)]);
  const pairs = ctx.temp('levels');
  ctx.node(
    'Gather',
    [ctx.constant({ dtype: 'float32', shape: [256, 2], data: pairTable(p.format) }), index],
    [pairs],
    [attr.int('axis', 0)],
  );
  const byBlock = ctx.temp('blocks');
  ctx.node('Reshape', [pairs, ctx.int64([blocks, p.blockSize])], [byBlock]);
  let s = ctx.name(scales);
  if (scales.rank !== 2 || scales.shape[1] !== 1) {
    s = ctx.temp('scales');
    ctx.node('Reshape', [ctx.name(scales), ctx.int64([blocks, 1])], [s]);
  }
  const scaled = ctx.temp('scaled');
  ctx.node('Mul', [byBlock, s], [scaled]);
  ctx.node('Reshape', [scaled, ctx.int64([p.rows, p.cols])], [out]);
}

defineOp('Dequantize4Bit', {
  infer: (inputs, p): TensorType[] => {
    const q = paramsOf(p);
    checkQuantized('Dequantize4Bit', inputs, q);
    return [{ dtype: 'float32', shape: [q.rows, q.cols] }];
  },
  emit: (ctx, n) => emitDequantize(ctx, n.inputs[0], n.inputs[1], paramsOf(n.params), ctx.name(n.outputs[0])),
  nondifferentiable: true,
});

defineOp('MatMul4Bit', {
  infer: (inputs, p): TensorType[] => {
    const q = paramsOf(p);
    const [x, ...rest] = inputs;
    checkQuantized('MatMul4Bit', rest, q);
    if (x.dtype !== 'float32' && x.dtype !== 'float64')
      throw shapeError('MatMul4Bit', inputs, 'x must be float32 or float64');
    if (x.rank < 1 || x.shape[x.rank - 1] !== q.cols)
      throw shapeError('MatMul4Bit', inputs, `x's last axis must be the weight's ${q.cols} columns`);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), q.rows] }];
  },
  emit: (ctx, n) => {
    const q = paramsOf(n.params);
    const [x, codes, scales] = n.inputs;
    const out = ctx.name(n.outputs[0]);
    if (x.dtype === 'float64') {
      // Gradient checks: the explicit weight, cast, then an ordinary product.
      const w = ctx.temp('w');
      emitDequantize(ctx, codes, scales, q, w);
      const w64 = ctx.temp('w64');
      ctx.node('Cast', [w], [w64], [attr.int('to', 11)]);
      const wt = ctx.temp('wt');
      ctx.node('Transpose', [w64], [wt], [attr.ints('perm', [1, 0])]);
      ctx.node('MatMul', [ctx.name(x), wt], [out]);
      return;
    }
    const m = x.size / q.cols;
    const x2 = ctx.temp('x2d');
    ctx.node('Reshape', [ctx.name(x), ctx.int64([m, q.cols])], [x2]);
    const y2 = ctx.temp('y2d');
    const attrs = [attr.int('K', q.cols), attr.int('N', q.rows), attr.int('block_size', q.blockSize)];
    if (q.format === 'int4')
      ctx.node(
        'MatMulNBits',
        [x2, ctx.name(codes), ctx.name(scales)],
        [y2],
        [...attrs, attr.int('bits', 4)],
        'com.microsoft',
      );
    else
      ctx.node(
        'MatMulBnb4',
        [x2, ctx.name(codes), ctx.name(scales)],
        [y2],
        [...attrs, attr.int('quant_type', 1)],
        'com.microsoft',
      );
    ctx.node('Reshape', [y2, ctx.int64([...n.outputs[0].shape])], [out]);
  },
  vjp: (node: Node, cts) => {
    const g = cts[0];
    if (!g) return [null, null, null];
    const [x, codes, scales] = node.inputs;
    const w = dequantize4Bit(codes, scales, paramsOf(node.params));
    return [matmul(g, x.dtype === 'float32' ? w : cast(w, x.dtype)), null, null];
  },
});

/** The float32 weight [rows, cols] of 4-bit codes and block scales. */
export function dequantize4Bit(codes: Value, scales: Value, p: FourBitParams): Value {
  return apply1('Dequantize4Bit', [codes, scales], { ...p });
}

/** x · Wᵀ for a 4-bit weight W [rows, cols]: x [..., cols] → [..., rows] (torch Linear without bias). */
export function matmul4Bit(x: Value, codes: Value, scales: Value, p: FourBitParams): Value {
  return apply1('MatMul4Bit', [x, codes, scales], { ...p });
}

/** The explicit reference product (for tests): x · dequantize4Bit(...)ᵀ. */
export function matmul4BitReference(x: Value, codes: Value, scales: Value, p: FourBitParams): Value {
  const w = dequantize4Bit(codes, scales, p);
  return matmul(x, transpose(x.dtype === 'float32' ? w : cast(w, x.dtype), [1, 0]));
}

/**
 * bitsandbytes' double quantization of the 4-bit absmax values: blocks of `blockSize` (256) 8-bit codes into the
 * 256-value `code` map, times each block's absmax, plus the offset (the absmax values' mean). Output [n, 1], the
 * scales input of the 4-bit ops. Starts with a DequantizeLinear for the same reason as dequantize4Bit.
 */
defineOp('DequantizeBlockwise8Bit', {
  infer: (inputs, p): TensorType[] => {
    const [q, code, absmax, offset] = inputs;
    const bs = p.blockSize as number;
    if (q.dtype !== 'uint8' || q.rank !== 1)
      throw shapeError('DequantizeBlockwise8Bit', inputs, 'codes must be uint8 [n]');
    if (code.dtype !== 'float32' || code.size !== 256)
      throw shapeError('DequantizeBlockwise8Bit', inputs, 'the code map must be float32 [256]');
    if (absmax.dtype !== 'float32' || absmax.size !== Math.ceil(q.size / bs))
      throw shapeError('DequantizeBlockwise8Bit', inputs, `needs one absmax per ${bs} codes`);
    if (offset.dtype !== 'float32' || offset.size !== 1)
      throw shapeError('DequantizeBlockwise8Bit', inputs, 'the offset must be one float32');
    return [{ dtype: 'float32', shape: [q.size, 1] }];
  },
  emit: (ctx, n) => {
    const [q, code, absmax, offset] = n.inputs;
    const bs = n.params.blockSize as number;
    const count = q.size;
    const blocks = Math.ceil(count / bs);
    const asFloat = ctx.temp('bytes');
    ctx.node(
      'DequantizeLinear',
      [ctx.name(q), ctx.constant({ dtype: 'float32', shape: [], data: Float32Array.of(1) })],
      [asFloat],
    );
    const index = ctx.temp('byte');
    ctx.node('Cast', [asFloat], [index], [attr.int('to', 6)]);
    const values = ctx.temp('values');
    ctx.node('Gather', [ctx.name(code), index], [values], [attr.int('axis', 0)]);
    let full = values;
    if (blocks * bs !== count) {
      full = ctx.temp('padded');
      ctx.node('Pad', [values, ctx.int64([0, blocks * bs - count])], [full]);
    }
    const byBlock = ctx.temp('blocks');
    ctx.node('Reshape', [full, ctx.int64([blocks, bs])], [byBlock]);
    const scale = ctx.temp('absmax');
    ctx.node('Reshape', [ctx.name(absmax), ctx.int64([blocks, 1])], [scale]);
    const scaled = ctx.temp('scaled');
    ctx.node('Mul', [byBlock, scale], [scaled]);
    const flat = ctx.temp('flat');
    ctx.node('Reshape', [scaled, ctx.int64([blocks * bs])], [flat]);
    let kept = flat;
    if (blocks * bs !== count) {
      kept = ctx.temp('kept');
      ctx.node('Slice', [flat, ctx.int64([0]), ctx.int64([count]), ctx.int64([0])], [kept]);
    }
    const shifted = ctx.temp('shifted');
    ctx.node('Add', [kept, ctx.name(offset)], [shifted]);
    ctx.node('Reshape', [shifted, ctx.int64([count, 1])], [ctx.name(n.outputs[0])]);
  },
  nondifferentiable: true,
});

/** Absmax values [n, 1] of double-quantized 4-bit scales (bitsandbytes compress_statistics). */
export function dequantizeBlockwise8Bit(
  codes: Value,
  code: Value,
  absmax: Value,
  offset: Value,
  blockSize = 256,
): Value {
  return apply1('DequantizeBlockwise8Bit', [codes, code, absmax, offset], { blockSize });
}
