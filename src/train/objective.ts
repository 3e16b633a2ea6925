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
 * Next-token cross-entropy over non-ignored targets. Metrics count content targets only: targets that are not in
 * `nonContentIds` (special tokens such as the end of turn, which are always predictable and would put chance near
 * 50% on one-word answers, and the unknown token, which must never count as correct):
 *   correct   content targets predicted exactly (argmax == target)      content   content targets
 *   exact     rows whose every content target is predicted (teacher-forced exact match of the whole answer)
 *   rows      rows with at least one content target
 * With `vlm`, the model's image inputs for batches like `images` (every batch's padded to the same shapes) feed
 * the vision tower and the image features replace the placeholder tokens.
 */
export function causalLmObjective(
  model: DecoderLm,
  batch: number,
  seqLen: number,
  labelSmoothing = 0,
  vlm: { model: Vlm; images: ImageRows } | null = null,
  nonContentIds: readonly number[] = [],
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
      const content = nonContentIds.length
        ? T.logicalAnd(
            valid,
            contentTable(graph, logits.shape[logits.shape.length - 1], nonContentIds, targets, valid),
          )
        : valid;
      const float = (v: Value) => T.cast(v, 'float32');
      const hit = T.logicalAnd(T.equal(T.argmax(logits, -1), targets), content);
      const missedPerRow = T.reduceSum(float(T.logicalAnd(content, T.logicalNot(hit))), 1);
      const answered = T.greater(T.reduceSum(float(content), 1), 0);
      const exact = T.logicalAnd(answered, T.equal(missedPerRow, 0));
      return {
        lossSum,
        count,
        metrics: {
          correct: T.reduceSum(float(hit)),
          content: T.reduceSum(float(content)),
          exact: T.reduceSum(float(exact)),
          rows: T.reduceSum(float(answered)),
        },
      };
    },
  };
}

/** Whether each target is a content token: a 0/1 table over the vocabulary gathered at the (valid) targets. */
function contentTable(
  graph: Graph,
  vocab: number,
  nonContentIds: readonly number[],
  targets: Value,
  valid: Value,
): Value {
  const table = new Array<number>(vocab).fill(1);
  for (const id of nonContentIds) if (id >= 0 && id < vocab) table[id] = 0;
  const at = T.where(valid, targets, 0);
  return T.greater(T.gather(T.constant(graph, 'float32', [vocab], table), at), 0.5);
}
