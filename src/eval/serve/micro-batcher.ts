/**
 * Micro-batching across clients: requests for one model that arrive within `windowMs` of each other (or until
 * `maxBatch` are waiting) go to the model as one call, which runs items with compatible decoding settings as one
 * batch. While a batch runs, newcomers queue and form the next one, so a busy server batches without waiting.
 */
import type { VlmImage } from '../../models/types.ts';
import type { GenerationItem, GenerationOutput, LocalModel, TokenLogprob } from '../inference/local-model.ts';

type Job =
  | {
      kind: 'generate';
      item: GenerationItem;
      resolve: (o: GenerationOutput) => void;
      reject: (e: unknown) => void;
    }
  | {
      kind: 'logprobs';
      ids: readonly number[];
      images: readonly VlmImage[];
      topK: number;
      resolve: (o: TokenLogprob[]) => void;
      reject: (e: unknown) => void;
    };

export interface MicroBatcherOptions {
  /** Most requests per model call; default 16. */
  maxBatch?: number;
  /** How long the first request of a batch waits for others, in milliseconds; default 5. */
  windowMs?: number;
}

export interface BatcherStats {
  batches: number;
  items: number;
  largest: number;
}

export class MicroBatcher {
  readonly maxBatch: number;
  readonly windowMs: number;
  readonly stats: BatcherStats = { batches: 0, items: 0, largest: 0 };
  private readonly queue: Job[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    readonly model: LocalModel,
    options: MicroBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 16;
    this.windowMs = options.windowMs ?? 5;
  }

  generate(item: GenerationItem): Promise<GenerationOutput> {
    return new Promise((resolve, reject) => this.push({ kind: 'generate', item, resolve, reject }));
  }

  /**
   * Every token's log-probability given those before it (see LocalModel.promptLogprobs); a VLM's ids hold its
   * images' placeholders expanded.
   */
  promptLogprobs(
    ids: readonly number[],
    topK: number,
    images: readonly VlmImage[] = [],
  ): Promise<TokenLogprob[]> {
    return new Promise((resolve, reject) =>
      this.push({ kind: 'logprobs', ids, images, topK, resolve, reject }),
    );
  }

  /** Resolves when the queue is empty and no batch runs. */
  async drain(): Promise<void> {
    while (this.running || this.queue.length > 0) await this.idle;
  }

  private push(job: Job): void {
    this.queue.push(job);
    this.schedule();
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.maxBatch) {
      this.start();
      return;
    }
    if (!this.timer) this.timer = setTimeout(() => this.start(), this.windowMs);
  }

  private start(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const batch = this.queue.splice(0, this.maxBatch);
    this.idle = this.runBatch(batch).finally(() => {
      this.running = false;
      // Whatever queued meanwhile has waited at least one batch: run it now.
      if (this.queue.length > 0) this.start();
    });
  }

  private async runBatch(batch: Job[]): Promise<void> {
    this.stats.batches++;
    this.stats.items += batch.length;
    this.stats.largest = Math.max(this.stats.largest, batch.length);
    const gen = batch.filter((j) => j.kind === 'generate');
    const lp = batch.filter((j) => j.kind === 'logprobs');
    if (gen.length > 0) {
      try {
        const out = await this.model.generate(gen.map((j) => j.item));
        gen.forEach((j, i) => {
          j.resolve(out[i]);
        });
      } catch (error) {
        for (const j of gen) j.reject(error);
      }
    }
    // Requests with the same top-k share one call (the logits fetch depends on it).
    const byTopK = new Map<number, typeof lp>();
    for (const j of lp) byTopK.set(j.topK, [...(byTopK.get(j.topK) ?? []), j]);
    for (const [topK, jobs] of byTopK) {
      try {
        const out = await this.model.promptLogprobs(
          jobs.map((j) => j.ids),
          topK,
          jobs.map((j) => j.images),
        );
        jobs.forEach((j, i) => {
          j.resolve(out[i]);
        });
      } catch (error) {
        for (const j of jobs) j.reject(error);
      }
    }
  }
}
