/**
 * Weight variants of an exported graph, under the file names transformers.js looks for (src/utils/dtypes.js
 * DEFAULT_DTYPE_SUFFIX_MAPPING): inputs and outputs stay float32, only the stored weights change.
 *
 * - fp16 → `model_fp16.onnx`: every weight stored as float16 and Cast to float32 where it is read (half the
 *   file; computation stays float32, so it runs on any CPU).
 * - int8 → `model_int8.onnx`, q8 → `model_quantized.onnx`: MatMul weights [K, N] as int8 with one scale per
 *   output column (symmetric, zero point 0), restored by DequantizeLinear (axis 1).
 * - uint8 → `model_uint8.onnx`: as int8 but asymmetric uint8 with a zero point per column.
 * - q4 → `model_q4.onnx`: MatMul weights as 4-bit blocks along K (block 32, asymmetric: a float scale and a 4-bit
 *   zero point per block) in onnxruntime's com.microsoft MatMulNBits, which onnxruntime's CPU and WebAssembly
 *   builds run.
 * Embedding tables and norms stay float32 in the quantized variants (Gather reads them; they are small next
 * to the projections in all but the tiniest models).
 */
import { f32ToF16Bits } from '../engine/dtype.ts';
import { attr, type OnnxGraph, type OnnxNode, type OnnxTensor } from '../engine/onnx/model.ts';
import { TlabError } from '../util/errors.ts';
import type { ExportGraph } from './onnx-export-builder.ts';

export const WEIGHT_VARIANTS = ['fp16', 'int8', 'q8', 'uint8', 'q4'] as const;
export type WeightVariant = (typeof WEIGHT_VARIANTS)[number];
export const QUANTIZATIONS = ['int8', 'q8', 'uint8', 'q4'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

/** The file-name suffix transformers.js uses for each variant (fp32 has none). */
export const VARIANT_SUFFIX: Record<WeightVariant | 'fp32', string> = {
  fp32: '',
  fp16: '_fp16',
  int8: '_int8',
  q8: '_quantized',
  uint8: '_uint8',
  q4: '_q4',
};

export const Q4_BLOCK_SIZE = 32;

export function weightVariant(g: ExportGraph, variant: WeightVariant | 'fp32'): OnnxGraph {
  switch (variant) {
    case 'fp32':
      return g.graph;
    case 'fp16':
      return toFloat16Weights(g);
    case 'int8':
    case 'q8':
      return quantizeMatMulWeights(g, 'int8');
    case 'uint8':
      return quantizeMatMulWeights(g, 'uint8');
    case 'q4':
      return quantizeMatMulWeights(g, 'q4');
  }
}

function floats(t: OnnxTensor): Float32Array {
  if (!t.raw || t.dtype !== 'float32')
    throw new TlabError(`ONNX export: weight '${t.name}' is not inline float32`);
  const copy = new Uint8Array(t.raw);
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

function bytesOf(a: Uint8Array | Int8Array | Uint16Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Every float32 weight stored as float16, Cast back to float32 under its own name. */
export function toFloat16Weights(g: ExportGraph): OnnxGraph {
  const casts: OnnxNode[] = [];
  const initializers = g.graph.initializers.map((t) => {
    if (!g.weights.has(t.name) || t.dtype !== 'float32') return t;
    const src = floats(t);
    const half = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) half[i] = f32ToF16Bits(src[i]);
    const stored = `${t.name}_fp16`;
    casts.push({
      opType: 'Cast',
      inputs: [stored],
      outputs: [t.name],
      name: `${t.name}/Cast`,
      attrs: [attr.int('to', 1)],
    });
    return { name: stored, dtype: 'float16' as const, dims: t.dims, raw: bytesOf(half) };
  });
  return { ...g.graph, initializers, nodes: [...casts, ...g.graph.nodes] };
}

/** Weights read only as the second input of MatMul nodes (so they can be replaced by a quantized operator). */
function matmulWeights(g: ExportGraph): Map<string, OnnxTensor> {
  const byName = new Map(g.graph.initializers.map((t) => [t.name, t]));
  const uses = new Map<string, { matmul: number; other: number }>();
  for (const n of g.graph.nodes)
    n.inputs.forEach((input, i) => {
      if (!g.weights.has(input)) return;
      const u = uses.get(input) ?? { matmul: 0, other: 0 };
      if (n.opType === 'MatMul' && i === 1) u.matmul++;
      else u.other++;
      uses.set(input, u);
    });
  const out = new Map<string, OnnxTensor>();
  for (const [name, u] of uses) {
    const t = byName.get(name);
    if (t && u.other === 0 && t.dims.length === 2 && t.dtype === 'float32') out.set(name, t);
  }
  return out;
}

function quantizeMatMulWeights(g: ExportGraph, kind: 'int8' | 'uint8' | 'q4'): OnnxGraph {
  const targets = matmulWeights(g);
  const extra: OnnxTensor[] = [];
  const dequant: OnnxNode[] = [];
  const initializers = g.graph.initializers.filter((t) => !targets.has(t.name));
  if (kind !== 'q4') {
    for (const [name, t] of targets) {
      const q = quantize8(floats(t), t.dims[0], t.dims[1], kind);
      const n = t.dims[1];
      extra.push(
        { name: `${name}_quantized`, dtype: kind, dims: t.dims, raw: bytesOf(q.values) },
        { name: `${name}_scale`, dtype: 'float32', dims: [n], raw: bytesOf(q.scales) },
        { name: `${name}_zero_point`, dtype: kind, dims: [n], raw: bytesOf(q.zeroPoints) },
      );
      dequant.push({
        opType: 'DequantizeLinear',
        inputs: [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`],
        outputs: [name],
        name: `${name}/DequantizeLinear`,
        attrs: [attr.int('axis', 1)],
      });
    }
    return { ...g.graph, initializers: [...initializers, ...extra], nodes: [...dequant, ...g.graph.nodes] };
  }
  const nodes = g.graph.nodes.map((node) => {
    const t = node.opType === 'MatMul' ? targets.get(node.inputs[1]) : undefined;
    if (!t) return node;
    const [k, n] = t.dims;
    const q = quantize4(floats(t), k, n, Q4_BLOCK_SIZE);
    const name = t.name;
    extra.push(
      { name: `${name}_q4`, dtype: 'uint8', dims: [n, q.blocks, Q4_BLOCK_SIZE / 2], raw: q.packed },
      { name: `${name}_scales`, dtype: 'float32', dims: [n * q.blocks], raw: bytesOf(q.scales) },
      { name: `${name}_zero_points`, dtype: 'uint8', dims: [q.zeroPoints.length], raw: q.zeroPoints },
    );
    return {
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      inputs: [node.inputs[0], `${name}_q4`, `${name}_scales`, `${name}_zero_points`],
      outputs: node.outputs,
      name: `${node.name ?? name}/MatMulNBits`,
      attrs: [attr.int('K', k), attr.int('N', n), attr.int('bits', 4), attr.int('block_size', Q4_BLOCK_SIZE)],
    } satisfies OnnxNode;
  });
  return { ...g.graph, initializers: [...initializers, ...extra], nodes };
}

/** Per-column 8-bit quantization of a row-major [K, N] matrix; dequantized w = (q − zero) · scale. */
export function quantize8(
  w: Float32Array,
  k: number,
  n: number,
  kind: 'int8' | 'uint8',
): { values: Int8Array | Uint8Array; scales: Float32Array; zeroPoints: Int8Array | Uint8Array } {
  const values = kind === 'int8' ? new Int8Array(k * n) : new Uint8Array(k * n);
  const zeroPoints = kind === 'int8' ? new Int8Array(n) : new Uint8Array(n);
  const scales = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    let lo = 0;
    let hi = 0;
    for (let r = 0; r < k; r++) {
      const x = w[r * n + c];
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    let scale: number;
    let zero: number;
    let qmin: number;
    let qmax: number;
    if (kind === 'int8') {
      scale = Math.max(-lo, hi) / 127;
      zero = 0;
      [qmin, qmax] = [-127, 127];
    } else {
      scale = (hi - lo) / 255;
      zero = scale > 0 ? Math.min(255, Math.max(0, Math.round(-lo / scale))) : 0;
      [qmin, qmax] = [0, 255];
    }
    if (!(scale > 0)) scale = 1;
    scales[c] = scale;
    zeroPoints[c] = zero;
    const s = Math.fround(scale);
    for (let r = 0; r < k; r++)
      values[r * n + c] = Math.min(qmax, Math.max(qmin, Math.round(w[r * n + c] / s) + zero));
  }
  return { values, scales, zeroPoints };
}

/**
 * MatMulNBits' 4-bit layout (onnxruntime contrib_defs MatMulNBits): for output column n and block j of
 * `blockSize` rows of K, a scale, a 4-bit zero point (two per byte, low nibble first, a column's blocks padded to
 * whole bytes) and blockSize/2 bytes of values (low nibble first). Rows past K in the last block hold the zero
 * point (they dequantize to 0).
 */
export function quantize4(
  w: Float32Array,
  k: number,
  n: number,
  blockSize: number,
): { packed: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array; blocks: number } {
  const blocks = Math.ceil(k / blockSize);
  const zpBytes = Math.ceil(blocks / 2);
  const packed = new Uint8Array(n * blocks * (blockSize / 2));
  const scales = new Float32Array(n * blocks);
  const zeroPoints = new Uint8Array(n * zpBytes);
  for (let c = 0; c < n; c++) {
    for (let j = 0; j < blocks; j++) {
      const r0 = j * blockSize;
      const r1 = Math.min(k, r0 + blockSize);
      let lo = 0;
      let hi = 0;
      for (let r = r0; r < r1; r++) {
        const x = w[r * n + c];
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      let scale = (hi - lo) / 15;
      if (!(scale > 0)) scale = 1;
      const zero = Math.min(15, Math.max(0, Math.round(-lo / scale)));
      scales[c * blocks + j] = scale;
      const s = Math.fround(scale);
      zeroPoints[c * zpBytes + (j >> 1)] |= zero << ((j & 1) * 4);
      const base = (c * blocks + j) * (blockSize / 2);
      for (let i = 0; i < blockSize; i++) {
        const r = r0 + i;
        const q = r < k ? Math.min(15, Math.max(0, Math.round(w[r * n + c] / s) + zero)) : zero;
        packed[base + (i >> 1)] |= q << ((i & 1) * 4);
      }
    }
  }
  return { packed, scales, zeroPoints, blocks };
}
