/**
 * Training objectives as graph builders: each declares its batch inputs and returns the summed loss, the count it
 * sums over, and summed metrics, so micro-batches combine into exact means.
 */
import type { Graph, Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { DecoderLm, ImageRows, Vlm } from '../models/types.ts';
import type { ParamBuilder } from '../nn/module.ts';
import { IGNORE } from './examples.ts';

export interface ObjectiveOutputs {
  lossSum: Value;
  count: Value;
  /** Summed metrics (e.g. correct predictions), normalised by `count` when reported. */
  metrics: Record<string, Value>;
}

export interface Objective {
  /** Shapes of the batch inputs, e.g. {ids: [B, T]}. */
  readonly batchShape: { batch: number; seqLen: number };
  build(graph: Graph, pb: ParamBuilder): ObjectiveOutputs;
}

/**
 * Next-token cross-entropy over non-ignored targets; metrics: correct (argmax == target). With `vlm`, the model's
 * image inputs for batches like `images` (every batch's padded to the same shapes) feed the vision tower and the
 * image features replace the placeholder tokens.
 */
export function causalLmObjective(
  model: DecoderLm,
  batch: number,
  seqLen: number,
  labelSmoothing = 0,
  vlm: { model: Vlm; images: ImageRows } | null = null,
): Objective {
  return {
    batchShape: { batch, seqLen },
    build(graph, pb) {
      const ids = graph.input('ids', 'int64', [batch, seqLen]);
      const targets = graph.input('targets', 'int64', [batch, seqLen]);
      const attentionMask = graph.input('attention_mask', 'int64', [batch, seqLen]);
      const { logits } = vlm
        ? vlm.model.forward(pb, { ids, attentionMask, ...vlm.model.imageInputs.declare(graph, vlm.images) })
        : model.forward(pb, { ids, attentionMask });
      const lossSum = T.crossEntropy(logits, targets, {
        reduction: 'sum',
        ignoreIndex: IGNORE,
        labelSmoothing,
      });
      const valid = T.notEqual(targets, IGNORE);
      const count = T.reduceSum(T.cast(valid, 'float32'));
      const correct = T.reduceSum(
        T.cast(T.logicalAnd(T.equal(T.argmax(logits, -1), targets), valid), 'float32'),
      );
      return { lossSum, count, metrics: { correct } };
    },
  };
}
