/**
 * Cross-entropy as one primitive with a fused VJP: the composed form's backward (scatter into zeros, exp of the
 * log-probabilities, reductions) made several passes over the [N, C] logits, which dominate small language models
 * with large vocabularies; here the backward is softmax, one scatter-add of the target weights and one scale.
 */

import { TlabError } from '../../util/errors.ts';
import type { Value } from '../ir/graph.ts';
import { attr } from '../onnx/model.ts';
import { cast, div, maximum, mul, notEqual, sub, where } from './elementwise.ts';
import { reshape, unsqueeze } from './movement.ts';
import { reduceSum } from './reduce.ts';
import { apply1, defineOp, shapeError } from './registry.ts';
import { softmax } from './softmax.ts';

export interface CrossEntropyOptions {
  /** Targets equal to this are ignored (default -100, as torch and Hugging Face). */
  ignoreIndex?: number;
  /** Label smoothing ε: the target is (1 − ε)·one-hot + ε/C (torch semantics). */
  labelSmoothing?: number;
  /** 'mean' averages over non-ignored targets (0 when all are ignored), 'sum' adds, 'none' keeps per-target losses. */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Cross-entropy of `logits` [..., C] against integer `targets` [...], matching torch.nn.functional.cross_entropy
 * (ignore_index, label_smoothing, reduction).
 */
export function crossEntropy(logits: Value, targets: Value, options: CrossEntropyOptions = {}): Value {
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = 'mean' } = options;
  if (targets.rank !== logits.rank - 1 || targets.shape.some((d, i) => d !== logits.shape[i])) {
    throw new TlabError(
      `crossEntropy: targets ${targets} must have the shape of logits ${logits} without its last axis`,
    );
  }
  if (targets.dtype !== 'int64')
    throw new TlabError(`crossEntropy: targets must be int64, got ${targets.dtype}`);
  if (labelSmoothing < 0 || labelSmoothing > 1)
    throw new TlabError(`crossEntropy: labelSmoothing must be in [0, 1]`);
  const valid = notEqual(targets, ignoreIndex);
  const safeTargets = where(valid, targets, 0);
  let perTarget = apply1('CrossEntropyRows', [logits, safeTargets], { smoothing: labelSmoothing });
  const validF = cast(valid, logits.dtype);
  perTarget = mul(perTarget, validF);
  if (reduction === 'none') return perTarget;
  const total = reduceSum(reshape(perTarget, [-1]));
  if (reduction === 'sum') return total;
  return div(total, maximum(reduceSum(reshape(validF, [-1])), 1));
}

/**
 * Per-row cross-entropy of logits [..., C] against (already valid) targets [...]: −(1−ε)·log p[y] − ε·mean(log p).
 * Ignored rows are masked by the caller; their targets must be in range (the caller puts 0 there).
 */
defineOp('CrossEntropyRows', {
  infer: (inputs) => {
    const [logits, targets] = inputs;
    if (targets.rank !== logits.rank - 1)
      throw shapeError('CrossEntropyRows', inputs, 'targets must drop the class axis');
    return [{ dtype: logits.dtype, shape: targets.shape }];
  },
  emit: (ctx, n) => {
    const [logits, targets] = n.inputs;
    const eps = n.params.smoothing as number;
    const axis = logits.rank - 1;
    const logp = ctx.temp('logp');
    ctx.node('LogSoftmax', [ctx.name(logits)], [logp], [attr.int('axis', axis)]);
    const idx = ctx.temp('idx');
    ctx.node('Unsqueeze', [ctx.name(targets), ctx.int64([axis])], [idx]);
    const picked = ctx.temp('picked');
    ctx.node('GatherElements', [logp, idx], [picked], [attr.int('axis', axis)]);
    const nll = ctx.temp('nll');
    ctx.node('Squeeze', [picked, ctx.int64([axis])], [nll]);
    const out = ctx.name(n.outputs[0]);
    const scalar = (v: number) =>
      ctx.constant({
        dtype: logits.dtype,
        shape: [],
        data: logits.dtype === 'float64' ? Float64Array.of(v) : Float32Array.of(v),
      });
    if (eps === 0) {
      ctx.node('Neg', [nll], [out]);
      return;
    }
    const mean = ctx.temp('mean');
    ctx.node('ReduceMean', [logp, ctx.int64([axis])], [mean], [attr.int('keepdims', 0)]);
    const a = ctx.temp('a');
    ctx.node('Mul', [nll, scalar(-(1 - eps))], [a]);
    const b = ctx.temp('b');
    ctx.node('Mul', [mean, scalar(-eps)], [b]);
    ctx.node('Add', [a, b], [out]);
  },
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return [null, null];
    const [logits, targets] = n.inputs;
    const eps = n.params.smoothing as number;
    const c = logits.shape[logits.rank - 1];
    // d/dlogits = (softmax − (1−ε)·onehot(y) − ε/C) · g
    let d = apply1('ScatterElementsAdd', [softmax(logits, -1), unsqueeze(targets, -1)], {
      axis: logits.rank - 1,
      value: -(1 - eps),
    });
    if (eps > 0) d = sub(d, eps / c);
    return [mul(d, unsqueeze(g, -1)), null];
  },
});

/** data with `value` added at data[..., idx[..., j]] along `axis` (ScatterElements, reduction add). */
defineOp('ScatterElementsAdd', {
  infer: (inputs) => [{ dtype: inputs[0].dtype, shape: inputs[0].shape }],
  emit: (ctx, n) => {
    const [data, idx] = n.inputs;
    const value = n.params.value as number;
    const updates = ctx.temp('updates');
    const one = ctx.constant({
      dtype: data.dtype,
      shape: [1],
      data: data.dtype === 'float64' ? Float64Array.of(value) : Float32Array.of(value),
    });
    ctx.node('Expand', [one, ctx.int64(idx.shape)], [updates]);
    ctx.node(
      'ScatterElements',
      [ctx.name(data), ctx.name(idx), updates],
      [ctx.name(n.outputs[0])],
      [attr.int('axis', n.params.axis as number), attr.string('reduction', 'add')],
    );
  },
});
