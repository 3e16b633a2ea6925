/** Losses composed from primitives, so their gradients come from the primitives' VJPs. */

import { TlabError } from '../../util/errors.ts';
import type { Value } from '../ir/graph.ts';
import { add, cast, div, maximum, mul, neg, notEqual, where } from './elementwise.ts';
import { gatherElements } from './indexing.ts';
import { reshape, squeeze, unsqueeze } from './movement.ts';
import { reduceMean, reduceSum } from './reduce.ts';
import { logSoftmax } from './softmax.ts';

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
  const logp = logSoftmax(logits, -1);
  const valid = notEqual(targets, ignoreIndex);
  const safeTargets = where(valid, targets, 0);
  let perTarget = neg(squeeze(gatherElements(logp, unsqueeze(safeTargets, -1), logp.rank - 1), [-1]));
  if (labelSmoothing > 0) {
    const smooth = neg(reduceMean(logp, -1, false));
    perTarget = add(mul(perTarget, 1 - labelSmoothing), mul(smooth, labelSmoothing));
  }
  const validF = cast(valid, logits.dtype);
  perTarget = mul(perTarget, validF);
  if (reduction === 'none') return perTarget;
  const total = reduceSum(reshape(perTarget, [-1]));
  if (reduction === 'sum') return total;
  return div(total, maximum(reduceSum(reshape(validF, [-1])), 1));
}
