/**
 * Deterministic batches: the examples of step s are a pure function of (seed, s), so a resumed run sees exactly
 * the batches an uninterrupted one would. Each epoch visits every example once in an order drawn from the seed.
 */
import type { HostTensor } from '../engine/tensor.ts';
import type { ImageRows, VlmImage, VlmImageInputs } from '../models/types.ts';
import { TlabError } from '../util/errors.ts';
import { Rng } from '../util/random.ts';
import { IGNORE, type TokenExample } from './examples.ts';

export interface BatcherOptions {
  batchSize: number;
  seqLen: number;
  seed: number;
  padId: number;
  /** Visit examples in their given order (evaluation); default false. */
  ordered?: boolean;
  /**
   * Count each example once (evaluation): rows that wrap into a second epoch to fill the last batch keep their
   * shapes but lose their targets, so accuracy is not weighted towards the first rows. Default false.
   */
  once?: boolean;
  /**
   * For VLMs: each example's images preprocessed (`image(file)`), fed through the model's image inputs with every
   * row padded to `perRow` images, so every batch has the shapes of the compiled step (`signature`).
   */
  images?: { inputs: VlmImageInputs; perRow: number; image(file: string): VlmImage; signature?: string };
}

/** Inputs of the causal-LM objective: ids, next-token targets (IGNORE where untrained) and the padding mask. */
export interface LmBatch {
  [name: string]: HostTensor;
  ids: HostTensor;
  targets: HostTensor;
  attention_mask: HostTensor;
}

export class ExampleBatcher {
  private readonly orders = new Map<number, number[]>();

  constructor(
    readonly examples: readonly TokenExample[],
    readonly options: BatcherOptions,
  ) {
    if (examples.length === 0) throw new TlabError('no training examples');
    if (!Number.isInteger(options.batchSize) || options.batchSize <= 0)
      throw new TlabError(`batch size must be a positive integer, got ${options.batchSize}`);
  }

  /** Example indices of the batch `index` (global position index·B ... index·B + B − 1 in the epoch stream). */
  indices(index: number): number[] {
    const n = this.examples.length;
    const out: number[] = [];
    for (let i = 0; i < this.options.batchSize; i++) {
      const k = index * this.options.batchSize + i;
      const epoch = Math.floor(k / n);
      out.push(this.order(epoch)[k % n]);
    }
    return out;
  }

  /** Batches per epoch (rounded up). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.examples.length / this.options.batchSize);
  }

  batch(index: number): LmBatch {
    const batch = this.collate(this.indices(index).map((i) => this.examples[i]));
    if (this.options.once) {
      const { batchSize, seqLen } = this.options;
      const targets = batch.targets.data as BigInt64Array;
      for (let r = 0; r < batchSize; r++)
        if (index * batchSize + r >= this.examples.length)
          targets.fill(BigInt(IGNORE), r * seqLen, (r + 1) * seqLen);
    }
    return batch;
  }

  /** Right-pads (or truncates) each example to seqLen and shifts labels into next-token targets. */
  collate(rows: readonly TokenExample[]): LmBatch {
    const { seqLen, padId } = this.options;
    const b = rows.length;
    const ids = new BigInt64Array(b * seqLen).fill(BigInt(padId));
    const targets = new BigInt64Array(b * seqLen).fill(BigInt(IGNORE));
    const mask = new BigInt64Array(b * seqLen);
    rows.forEach((ex, r) => {
      const len = Math.min(ex.ids.length, seqLen);
      for (let t = 0; t < len; t++) {
        ids[r * seqLen + t] = BigInt(ex.ids[t]);
        mask[r * seqLen + t] = 1n;
        // The token at t predicts the label at t + 1 (even past a truncation, the next token is known).
        targets[r * seqLen + t] = BigInt(t + 1 < ex.labels.length ? ex.labels[t + 1] : IGNORE);
      }
    });
    const batch: LmBatch = {
      ids: { dtype: 'int64', shape: [b, seqLen], data: ids },
      targets: { dtype: 'int64', shape: [b, seqLen], data: targets },
      attention_mask: { dtype: 'int64', shape: [b, seqLen], data: mask },
    };
    const images = this.options.images;
    if (images) {
      const padded = this.imageRows(rows);
      const signature = images.inputs.signature(padded);
      if (images.signature !== undefined && signature !== images.signature)
        throw new TlabError(
          `a batch's images (${signature}) do not match the training step's (${images.signature})`,
          "Qwen2-VL images of different sizes give different patch grids; train on images of one size (set the processor's min_pixels = max_pixels, or resize the task's images)",
        );
      Object.assign(batch, images.inputs.feeds(padded));
    }
    return batch;
  }

  /** The rows' images, padded with blank ones to the same number per row. */
  imageRows(rows: readonly TokenExample[]): ImageRows {
    const images = this.options.images;
    if (!images) return [];
    return images.inputs.pad(
      rows.map((ex) => (ex.images ?? []).map((f) => images.image(f))),
      images.perRow,
    );
  }

  private order(epoch: number): number[] {
    let o = this.orders.get(epoch);
    if (!o) {
      o = Array.from({ length: this.examples.length }, (_, i) => i);
      if (!this.options.ordered) new Rng(this.options.seed).fork(`epoch-${epoch}`).shuffle(o);
      if (this.orders.size > 4) this.orders.clear();
      this.orders.set(epoch, o);
    }
    return o;
  }
}
