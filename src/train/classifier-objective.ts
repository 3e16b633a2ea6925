/**
 * The classification objective and its batches: cross-entropy of a classifier's logits [B, C] against each row's
 * class index, summed (so micro-batches combine into exact means), with `correct` (argmax == label) as the metric
 * the trainer logs as accuracy. The labels go in as `targets` [B], so the trainer counts rows the way it counts an
 * LM's target tokens. Rows with the label IGNORE (padding of an evaluation split's last batch) count for nothing.
 */
import * as T from '../engine/ops/index.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { ImageClassifier, SequenceClassifier } from '../models/types.ts';
import { TlabError } from '../util/errors.ts';
import { Rng } from '../util/random.ts';
import { IGNORE } from './examples.ts';
import type { Objective } from './objective.ts';
import type { BatchSource } from './trainer.ts';

/** What a classifier reads: preprocessed pixels [C, H, W] (image classifiers) or token ids (sequence classifiers). */
export type ClassifierInput =
  | { kind: 'image'; classifier: ImageClassifier; imageShape: readonly [number, number, number] }
  | { kind: 'text'; classifier: SequenceClassifier; seqLen: number };

/** Cross-entropy over the classes; metrics: correct predictions. */
export function classifierObjective(input: ClassifierInput, batch: number, labelSmoothing = 0): Objective {
  return {
    // seqLen is the trainer's shape note; an image batch has no sequence axis.
    batchShape: { batch, seqLen: input.kind === 'text' ? input.seqLen : 1 },
    build(graph, pb) {
      const targets = graph.input('targets', 'int64', [batch]);
      const { logits } =
        input.kind === 'image'
          ? input.classifier.forward(pb, graph.input('pixel_values', 'float32', [batch, ...input.imageShape]))
          : input.classifier.forward(pb, {
              ids: graph.input('ids', 'int64', [batch, input.seqLen]),
              attentionMask: graph.input('attention_mask', 'int64', [batch, input.seqLen]),
            });
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

/** One labelled example: its class index and what the classifier reads. */
export type ClassifierExample =
  | { uid: string; label: number; pixels: Float32Array }
  | { uid: string; label: number; ids: readonly number[] };

export interface ClassifierBatcherOptions {
  batchSize: number;
  seed: number;
  /**
   * Evaluation: examples in their order, once: batch i holds examples i·B .. i·B + B − 1 and rows past the end are
   * padding with the label IGNORE (so an accuracy counts every example once). Default false: every epoch visits
   * every example once in an order drawn from the seed, and batches run on across epochs.
   */
  ordered?: boolean;
  /** Image examples: pixels per example, [C, H, W]. */
  imageShape?: readonly [number, number, number];
  /** Text examples: ids are right-padded with padId to seqLen (longer ones keep their last seqLen tokens). */
  text?: { seqLen: number; padId: number };
}

/**
 * Deterministic batches of labelled examples: batch s is a pure function of (seed, s), as the LM batcher's, so a
 * resumed run sees exactly the batches an uninterrupted one would.
 */
export class ClassifierBatcher implements BatchSource {
  private readonly orders = new Map<number, number[]>();

  constructor(
    readonly examples: readonly ClassifierExample[],
    readonly options: ClassifierBatcherOptions,
  ) {
    if (examples.length === 0) throw new TlabError('no labelled examples to batch');
    if (!Number.isInteger(options.batchSize) || options.batchSize <= 0)
      throw new TlabError(`batch size must be a positive integer, got ${options.batchSize}`);
    if (Boolean(options.imageShape) === Boolean(options.text))
      throw new Error('unreachable: a classifier batcher takes images or text');
  }

  /** Batches that cover the examples once (rounded up). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.examples.length / this.options.batchSize);
  }

  /** Example index of each row of batch `index` (−1 for a padding row of an ordered batcher). */
  indices(index: number): number[] {
    const n = this.examples.length;
    return Array.from({ length: this.options.batchSize }, (_, i) => {
      const k = index * this.options.batchSize + i;
      if (this.options.ordered) return k < n ? k : -1;
      return this.order(Math.floor(k / n))[k % n];
    });
  }

  batch(index: number): Record<string, HostTensor> {
    const rows = this.indices(index);
    const b = rows.length;
    const targets = new BigInt64Array(b).fill(BigInt(IGNORE));
    rows.forEach((e, r) => {
      if (e >= 0) targets[r] = BigInt(this.examples[e].label);
    });
    const out: Record<string, HostTensor> = { targets: { dtype: 'int64', shape: [b], data: targets } };
    if (this.options.imageShape) {
      const [c, h, w] = this.options.imageShape;
      const size = c * h * w;
      const pixels = new Float32Array(b * size);
      rows.forEach((e, r) => {
        if (e < 0) return;
        const ex = this.examples[e];
        if (!('pixels' in ex) || ex.pixels.length !== size)
          throw new Error(`unreachable: example ${ex.uid} has no [${c}, ${h}, ${w}] pixels`);
        pixels.set(ex.pixels, r * size);
      });
      out.pixel_values = { dtype: 'float32', shape: [b, c, h, w], data: pixels };
      return out;
    }
    const { seqLen, padId } = this.options.text!;
    const ids = new BigInt64Array(b * seqLen).fill(BigInt(padId));
    const mask = new BigInt64Array(b * seqLen);
    rows.forEach((e, r) => {
      // A padding row reads one pad token (an all-masked row would give attention nothing to normalise over).
      if (e < 0) {
        mask[r * seqLen] = 1n;
        return;
      }
      const ex = this.examples[e];
      if (!('ids' in ex)) throw new Error(`unreachable: example ${ex.uid} has no token ids`);
      const kept = ex.ids.slice(Math.max(0, ex.ids.length - seqLen));
      kept.forEach((id, t) => {
        ids[r * seqLen + t] = BigInt(id);
        mask[r * seqLen + t] = 1n;
      });
    });
    out.ids = { dtype: 'int64', shape: [b, seqLen], data: ids };
    out.attention_mask = { dtype: 'int64', shape: [b, seqLen], data: mask };
    return out;
  }

  private order(epoch: number): number[] {
    let o = this.orders.get(epoch);
    if (!o) {
      o = Array.from({ length: this.examples.length }, (_, i) => i);
      new Rng(this.options.seed).fork(`epoch-${epoch}`).shuffle(o);
      if (this.orders.size > 4) this.orders.clear();
      this.orders.set(epoch, o);
    }
    return o;
  }
}
