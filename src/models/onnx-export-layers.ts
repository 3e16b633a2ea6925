/**
 * Transformer layers for the portable ONNX exports, written on OnnxBuilder with shape-agnostic ops (any batch
 * size and sequence length): linear projections, LayerNorm, RMSNorm, activations, multi-head attention with
 * grouped-query heads, and the causal + padding bias over [past; new] keys. They mirror src/nn and src/models
 * (the same formulas and constants), which the export tests check by comparing logits with this project's
 * forward pass.
 */
import { attr } from '../engine/onnx/model.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';
import { MASK_MIN, type OnnxBuilder } from './onnx-export-builder.ts';

/** The model's float32 weights by parameter name, added to the graph as initializers on first use. */
export class ExportWeights {
  private readonly added = new Map<string, string>();

  constructor(
    private readonly b: OnnxBuilder,
    private readonly weights: ReadonlyMap<string, HostTensor>,
    /** Prepended to every name (e.g. "language_model." for a VLM's decoder). */
    readonly prefix = '',
  ) {}

  host(name: string): HostTensor {
    const full = this.prefix + name;
    const t = this.weights.get(full);
    if (!t) throw new TlabError(`ONNX export: the weights lack parameter '${full}'`);
    if (t.dtype !== 'float32')
      throw new TlabError(
        `ONNX export: parameter '${full}' is ${t.dtype}; the exporter expects float32 weights`,
      );
    return t;
  }

  has(name: string): boolean {
    return this.weights.has(this.prefix + name);
  }

  /** The weight as stored (e.g. GPT-2's Conv1D [in, out], an embedding table). */
  get(name: string): string {
    const full = this.prefix + name;
    let v = this.added.get(full);
    if (!v) {
      v = this.b.tensor(full, this.host(name));
      this.added.set(full, v);
    }
    return v;
  }

  /** A 2-D weight transposed on the host, `<name>.T`: nn.Linear's [out, in] as the [in, out] MatMul operand. */
  transposed(name: string): string {
    const full = `${this.prefix}${name}.T`;
    let v = this.added.get(full);
    if (!v) {
      const t = this.host(name);
      if (t.shape.length !== 2) throw new TlabError(`ONNX export: '${this.prefix}${name}' is not a matrix`);
      const [rows, cols] = t.shape;
      const src = t.data as Float32Array;
      const out = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
      v = this.b.tensor(full, { dtype: 'float32', shape: [cols, rows], data: out });
      this.added.set(full, v);
    }
    return v;
  }
}

/** nn.Linear (weight [out, in]) with an optional bias. */
export function linear(b: OnnxBuilder, w: ExportWeights, name: string, x: string, bias: boolean): string {
  const y = b.scope(name, () => b.matmul(x, w.transposed(`${name}.weight`)));
  return bias ? b.add(y, w.get(`${name}.bias`)) : y;
}

/** GPT-2's Conv1D (weight [in, out], bias). */
export function conv1d(b: OnnxBuilder, w: ExportWeights, name: string, x: string): string {
  return b.scope(name, () => b.add(b.matmul(x, w.get(`${name}.weight`)), w.get(`${name}.bias`)));
}

export function layerNorm(b: OnnxBuilder, w: ExportWeights, name: string, x: string, eps: number): string {
  return b.scope(name, () =>
    b.op(
      'LayerNormalization',
      [x, w.get(`${name}.weight`), w.get(`${name}.bias`)],
      [attr.int('axis', -1), attr.float('epsilon', eps)],
    ),
  );
}

/** x / √(mean(x²) + ε) · weight, as src/engine/ops/norm.ts composes it (opset 21 has no RMSNormalization). */
export function rmsNorm(b: OnnxBuilder, w: ExportWeights, name: string, x: string, eps: number): string {
  return b.scope(name, () => {
    const ms = b.op('ReduceMean', [b.mul(x, x), b.ints([-1])], [attr.int('keepdims', 1)]);
    const inv = b.op('Reciprocal', [b.op('Sqrt', [b.add(ms, b.scalarFloat(eps))])]);
    return b.mul(b.mul(x, inv), w.get(`${name}.weight`));
  });
}

export const EXPORT_ACTIVATIONS = [
  'gelu_new',
  'gelu_pytorch_tanh',
  'gelu',
  'relu',
  'silu',
  'swish',
  'quick_gelu',
] as const;

export function activation(b: OnnxBuilder, name: string, x: string): string {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return b.op('Gelu', [x], [attr.string('approximate', 'tanh')]);
    case 'gelu':
      return b.op('Gelu', [x]);
    case 'relu':
      return b.op('Relu', [x]);
    case 'silu':
    case 'swish':
      return b.mul(x, b.op('Sigmoid', [x]));
    case 'quick_gelu':
      return b.mul(x, b.op('Sigmoid', [b.mul(x, b.scalarFloat(1.702))]));
    default:
      throw new TlabError(
        `ONNX export: activation '${name}' is not supported; valid: ${EXPORT_ACTIVATIONS.join(', ')}`,
      );
  }
}

/** [B, T, H·D] → [B, H, T, D] */
export function splitHeads(b: OnnxBuilder, x: string, heads: number, headDim: number): string {
  return b.transpose(b.reshape(x, [0, 0, heads, headDim]), [0, 2, 1, 3]);
}

/** [B, H, T, D] → [B, T, H·D] */
export function mergeHeads(b: OnnxBuilder, y: string, width: number): string {
  return b.reshape(b.transpose(y, [0, 2, 1, 3]), [0, 0, width]);
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
}

/** softmax(q·scale kᵀ + bias) v for q [B, H, T, D] and k/v [B, Hkv, S, D] (key/value heads repeated for GQA). */
export function attention(
  b: OnnxBuilder,
  q: string,
  k: string,
  v: string,
  shape: AttentionShape,
  bias: string | null,
): string {
  const rep = shape.heads / shape.kvHeads;
  const repeat = (x: string) =>
    rep === 1
      ? x
      : b.reshape(b.op('Expand', [b.unsqueeze(x, [2]), b.ints([1, 1, rep, 1, 1])]), [
          0,
          shape.heads,
          -1,
          shape.headDim,
        ]);
  const qs = shape.scale === 1 ? q : b.mul(q, b.scalarFloat(shape.scale));
  let scores = b.matmul(qs, b.transpose(repeat(k), [0, 1, 3, 2]));
  if (bias) scores = b.add(scores, bias);
  const probs = b.op('Softmax', [scores], [attr.int('axis', -1)]);
  return b.matmul(probs, repeat(v));
}

/**
 * The additive attention bias [B, 1, T, P + T] of a decoder step: query t (absolute position P + t) may attend
 * key s when s ≤ P + t and attention_mask[b, s] is 1; other scores get the lowest finite float. `pastKey` is a
 * [B, Hkv, P, D] cache input, `tokens` a [B, T, ...] input and `attentionMask` the [B, P + T] int64 mask.
 */
export function causalPaddingBias(
  b: OnnxBuilder,
  attentionMask: string,
  pastKey: string,
  tokens: string,
): string {
  return b.scope('attention_bias', () => {
    const past = b.squeeze(b.dim(pastKey, 2), [0]);
    const total = b.add(past, b.squeeze(b.dim(tokens, 1), [0]));
    const one = b.scalarInt(1);
    const keys = b.unsqueeze(b.op('Range', [b.scalarInt(0), total, one]), [0]); // [1, S]
    const queries = b.unsqueeze(b.op('Range', [past, total, one]), [1]); // [T, 1]
    const causal = b.unsqueeze(b.op('LessOrEqual', [keys, queries]), [0, 1]); // [1, 1, T, S]
    const padding = b.cast(b.unsqueeze(attentionMask, [1, 2]), 'bool'); // [B, 1, 1, S]
    const allowed = b.op('And', [causal, padding]);
    return b.op('Where', [allowed, b.scalarFloat(0), b.scalarFloat(MASK_MIN)]);
  });
}
