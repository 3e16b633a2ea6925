/**
 * Text generation with a decoder LM: batched, greedy or sampled (temperature, top-k, top-p), with stop strings,
 * stop tokens and a token budget; rows finish independently.
 *
 * The cached path left-pads a batch's prompts to a shared length P, runs one prefill program (per batch size
 * and P) and then one decode program (per batch size and cache length S) per new token. The KV cache lives on
 * the host: programs read it as inputs (no copy), attend over [past; new] and return only the new keys/values
 * (no full-size cache write in the graph), and only the last position's logits [B, V] leave the graph. Left-padded rows get their own positions (`position_ids`), so a
 * prompt generates the same tokens whatever it is batched with. The uncached path (`useCache: false`) is the
 * reference: it re-runs the full forward pass over prompt + generated tokens at every step.
 */

import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { SessionConfig } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { DecoderLm, ImageRows, VlmImage } from '../models/types.ts';
import { countImagePlaceholders, expandImagePlaceholders, isVlm } from '../models/vlm.ts';
import { KvCache } from '../nn/kv-cache.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import { Rng } from '../util/random.ts';
import { ForwardRunner } from './forward.ts';
import { bucketLength } from './programs.ts';
import { chooseToken, type SamplingParams, validateSampling } from './sampling.ts';

/** A prompt as text (encoded with the tokenizer), as token ids (e.g. a rendered chat), or ids with images and settings of its own. */
export type Prompt = string | readonly number[] | PromptInput;

/** Token ids with a VLM's images, and settings of this prompt that override the call's. */
export interface PromptInput {
  /** Token ids with one image placeholder token per image (as chat templates render `<image>`); expanded here. */
  ids: readonly number[];
  /** Each image preprocessed (pixels [C, H, W], or Qwen2-VL patches with a grid), in placeholder order. */
  images?: readonly VlmImage[];
  /** This prompt's own sampling stream, whatever it is batched with. */
  seed?: number;
  maxNewTokens?: number;
  stop?: readonly string[];
}

export interface GenerateOptions {
  /** Most tokens to generate per prompt; default 64. */
  maxNewTokens?: number;
  /** 0 = greedy (default); otherwise sample from softmax(logits / temperature). */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 = off (default). */
  topK?: number;
  /** Sample from the smallest set of most likely tokens with probability >= p; 1 = off (default). */
  topP?: number;
  /** Stop when the generated text contains one of these; the text is cut before it. */
  stop?: readonly string[];
  /** Stop after generating one of these ids; default the tokenizer's stop ids (EOS and generation_config's). */
  stopTokenIds?: readonly number[];
  /** Seed of the sampling streams (one per prompt, so results do not depend on batching); default 0. */
  seed?: number;
  /** Prompts per batch; default 8. */
  batchSize?: number;
  /** Use the KV cache (default); false re-runs the full forward pass each step (the reference path). */
  useCache?: boolean;
  /** Let the tokenizer add its special tokens (e.g. BOS) to text prompts; default true. */
  addSpecialTokens?: boolean;
  /** Called after each batch with the number of prompts finished so far. */
  onProgress?: (done: number, total: number) => void;
}

export type FinishReason = 'stop' | 'length' | 'eos';

export interface Generation {
  /** Generated text (special tokens skipped, cut before a stop string). */
  text: string;
  /** Generated token ids, including a final stop token or the token that completed a stop string. */
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export interface GeneratorOptions {
  session?: SessionConfig;
  /** Prompt and cache lengths are rounded up to multiples of this, so programs are shared; default 16. */
  lengthStep?: number;
}

interface Settings extends SamplingParams {
  maxNewTokens: number;
  stop: readonly string[];
  stopIds: ReadonlySet<number>;
  seed: number;
  batchSize: number;
  useCache: boolean;
}

/** One prompt's progress. */
interface Row {
  index: number;
  /** Ids with image placeholders expanded. */
  prompt: readonly number[];
  images: readonly VlmImage[];
  maxNew: number;
  stop: readonly string[];
  /** Token budget: maxNewTokens, cut where the context (or the batch's cache) runs out. */
  limit: number;
  tokens: number[];
  finish: FinishReason | null;
  /** Set when a stop string cut the text. */
  text: string | null;
  rng: Rng;
}

/** Generates from one model and tokenizer, keeping compiled programs across calls. */
export class Generator {
  readonly runner: ForwardRunner;
  private readonly lengthStep: number;
  private readonly padId: number;
  private readonly imageTokenId: number | null;

  constructor(
    readonly model: DecoderLm,
    weights: ReadonlyMap<string, HostTensor>,
    readonly tokenizer: TextTokenizer,
    options: GeneratorOptions = {},
  ) {
    this.lengthStep = options.lengthStep ?? 16;
    this.padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
    this.imageTokenId = isVlm(model) ? model.imageTokenId : null;
    this.runner = new ForwardRunner(model, weights, {
      lengthStep: this.lengthStep,
      padId: this.padId,
      session: options.session,
    });
  }

  async generate(prompts: readonly Prompt[], options: GenerateOptions = {}): Promise<Generation[]> {
    const settings = this.settings(options);
    const encoded = prompts.map((p, i) => this.encode(p, i, options.addSpecialTokens ?? true, settings));
    // Similar lengths batch together (less padding); results go back in input order.
    const order = encoded
      .map((_, i) => i)
      .sort((a, b) => encoded[a].ids.length - encoded[b].ids.length || a - b);
    const results: Generation[] = new Array(prompts.length);
    for (let start = 0; start < order.length; start += settings.batchSize) {
      const chunk = order.slice(start, start + settings.batchSize);
      const rows: Row[] = chunk.map((index) => {
        const e = encoded[index];
        return {
          index,
          prompt: e.ids,
          images: e.images,
          maxNew: e.maxNew,
          stop: e.stop,
          limit: e.maxNew,
          tokens: [],
          finish: null,
          text: null,
          // A prompt's own seed starts its own stream; otherwise the stream is the call's seed and its index.
          rng:
            e.seed === undefined ? Rng.at(settings.seed, 'generate', index) : Rng.at(e.seed, 'generate', 0),
        };
      });
      const layout = this.layout(rows);
      if (settings.useCache) await this.runCached(rows, layout, settings);
      else await this.runUncached(rows, settings);
      for (const row of rows) results[row.index] = this.result(row);
      options.onProgress?.(Math.min(start + settings.batchSize, order.length), order.length);
    }
    return results;
  }

  async release(): Promise<void> {
    await this.runner.release();
  }

  private settings(o: GenerateOptions): Settings {
    const s: Settings = {
      maxNewTokens: o.maxNewTokens ?? 64,
      temperature: o.temperature ?? 0,
      topK: o.topK ?? 0,
      topP: o.topP ?? 1,
      stop: (o.stop ?? []).filter((x) => x.length > 0),
      stopIds: new Set(o.stopTokenIds ?? this.tokenizer.stopIds),
      seed: o.seed ?? 0,
      batchSize: o.batchSize ?? 8,
      useCache: o.useCache ?? true,
    };
    validateSampling(s);
    for (const [key, value] of [
      ['maxNewTokens', s.maxNewTokens],
      ['batchSize', s.batchSize],
    ] as const) {
      if (!Number.isInteger(value) || value < 1)
        throw new TlabError(`${key}: expected a positive integer, got ${value}`);
    }
    if (!Number.isInteger(s.seed)) throw new TlabError(`seed: expected an integer, got ${s.seed}`);
    return s;
  }

  private encode(
    prompt: Prompt,
    i: number,
    special: boolean,
    settings: Settings,
  ): {
    ids: readonly number[];
    images: readonly VlmImage[];
    seed: number | undefined;
    maxNew: number;
    stop: readonly string[];
  } {
    const input: PromptInput =
      typeof prompt === 'string'
        ? { ids: this.tokenizer.encode(prompt, { addSpecialTokens: special }) }
        : isTokenIds(prompt)
          ? { ids: prompt }
          : prompt;
    const maxNew = input.maxNewTokens ?? settings.maxNewTokens;
    if (!Number.isInteger(maxNew) || maxNew < 1)
      throw new TlabError(`prompt ${i}: maxNewTokens: expected a positive integer, got ${maxNew}`);
    if (input.seed !== undefined && !Number.isInteger(input.seed))
      throw new TlabError(`prompt ${i}: seed: expected an integer, got ${input.seed}`);
    const images = input.images ?? [];
    let ids = input.ids;
    if (images.length > 0 || (isVlm(this.model) && ids.includes(this.model.imageTokenId))) {
      const vlm = this.runner.vlm();
      const placeholders = countImagePlaceholders(ids, vlm.imageTokenId);
      if (placeholders !== images.length)
        throw new TlabError(
          `prompt ${i}: ${images.length} image(s) for ${placeholders} image placeholder token(s) (id ${vlm.imageTokenId}); give one image per placeholder`,
        );
      ids = expandImagePlaceholders(
        ids,
        vlm.imageTokenId,
        images.map((image, k) => vlm.imageInputs.tokens(image, `prompt ${i}: image ${k}`)),
      );
    }
    this.checkIds(ids, i);
    return {
      ids,
      images,
      seed: input.seed,
      maxNew,
      stop: (input.stop ?? settings.stop).filter((x) => x.length > 0),
    };
  }

  private checkIds(ids: readonly number[], i: number): void {
    const v = this.model.vocabSize;
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= v);
    if (bad !== undefined)
      throw new TlabError(`prompt ${i}: token id ${bad} is outside the vocabulary 0..${v - 1}`);
    if (ids.length === 0)
      throw new TlabError(`prompt ${i} is empty (and the tokenizer adds no BOS token): nothing to continue`);
    if (ids.length >= this.model.maxPositions)
      throw new TlabError(
        `prompt ${i} has ${ids.length} tokens: the model's context of ${this.model.maxPositions} leaves no room to generate`,
      );
  }

  /**
   * Prompt length P (left-padded, bucketed) and cache length S of a batch; sets each row's token budget. Both
   * paths use the same budgets, so they generate the same tokens even where the context runs out.
   */
  private layout(rows: Row[]): { p: number; s: number } {
    const maxPos = this.model.maxPositions;
    const longest = Math.max(...rows.map((r) => r.prompt.length));
    const maxNew = Math.max(...rows.map((r) => r.maxNew));
    // The k-th generated token is fed back at slot P + k - 1, and the last one is never fed back.
    const need = Math.min(maxNew, maxPos - longest) - 1;
    const p = bucketLength(longest, this.lengthStep, maxPos - need);
    const s = bucketLength(p + need, this.lengthStep, maxPos);
    for (const r of rows) r.limit = Math.min(r.maxNew, maxPos - r.prompt.length, s - p + 1);
    return { p, s };
  }

  /** Picks row's next token from its logits and applies the stop rules. */
  private advance(row: Row, logits: Float32Array, settings: Settings): void {
    // A VLM's image placeholder only marks a slot for image features: it is never generated (so the cached and the
    // re-forward paths agree: the latter would splice features into a generated placeholder).
    if (this.imageTokenId !== null) logits[this.imageTokenId] = Number.NEGATIVE_INFINITY;
    const token = chooseToken(logits, settings, row.rng);
    row.tokens.push(token);
    if (settings.stopIds.has(token)) {
      row.finish = 'eos';
      return;
    }
    if (row.stop.length > 0) {
      const text = this.decode(row.tokens);
      const at = firstStop(text, row.stop);
      if (at >= 0) {
        row.text = text.slice(0, at);
        row.finish = 'stop';
        return;
      }
    }
    if (row.tokens.length >= row.limit) row.finish = 'length';
  }

  /** Text of generated ids; ids past the tokenizer's vocabulary (padded embedding rows) have no text. */
  private decode(ids: readonly number[]): string {
    const known = ids.filter((id) => id < this.tokenizer.vocabSize);
    return this.tokenizer.decode(known, { skipSpecialTokens: true });
  }

  private result(row: Row): Generation {
    const shown = row.finish === 'eos' ? row.tokens.slice(0, -1) : row.tokens;
    return {
      text: row.text ?? this.decode(shown),
      tokenIds: row.tokens,
      finishReason: row.finish ?? 'length',
      promptTokens: row.prompt.length,
      completionTokens: row.tokens.length,
    };
  }

  private step(rows: Row[], logits: HostTensor, settings: Settings): boolean {
    const v = this.model.vocabSize;
    const data = logits.data as Float32Array;
    rows.forEach((row, r) => {
      if (!row.finish) this.advance(row, data.subarray(r * v, (r + 1) * v), settings);
    });
    return rows.every((r) => r.finish);
  }

  /** Reference path: a full forward pass over each row's prompt and tokens so far, every step. */
  private async runUncached(rows: Row[], settings: Settings): Promise<void> {
    for (;;) {
      const ids = rows.map((r) => [...r.prompt, ...r.tokens]);
      const out = await this.runner.run({ ids, images: rows.map((r) => r.images) }, { lastLogits: true });
      if (this.step(rows, out.lastLogits!, settings)) return;
    }
  }

  private async runCached(
    rows: Row[],
    { p, s }: { p: number; s: number },
    settings: Settings,
  ): Promise<void> {
    const { numLayers, numKvHeads: h, headDim: d } = this.model;
    const b = rows.length;
    const pads = rows.map((r) => p - r.prompt.length);
    // Positions after a row's images: Qwen2-VL's M-RoPE gives an image fewer positions than tokens.
    const shifts = rows.map((r) =>
      r.images.length ? this.runner.vlm().imageInputs.positionShift(r.images) : 0,
    );
    const caches = new Map<string, HostTensor>();
    for (let l = 0; l < numLayers; l++)
      for (const kind of ['key', 'value'])
        caches.set(`past.${l}.${kind}`, {
          dtype: 'float32',
          shape: [b, h, s, d],
          data: new Float32Array(b * h * s * d),
        });
    const cacheMask = new BigInt64Array(b * s);
    pads.forEach((pad, i) => {
      cacheMask.fill(1n, i * s + pad, i * s + p);
    });
    const write = (out: Record<string, HostTensor>, slot: number, t: number): void => {
      for (const [name, cache] of caches) {
        const fresh = out[name.replace('past.', 'new.')].data as Float32Array;
        const dst = cache.data as Float32Array;
        for (let i = 0; i < b * h; i++)
          dst.set(fresh.subarray(i * t * d, (i + 1) * t * d), (i * s + slot) * d);
      }
    };
    const int64 = (shape: number[], data: BigInt64Array): HostTensor => ({ dtype: 'int64', shape, data });
    const feeds = (ids: BigInt64Array, positions: BigInt64Array, slots: BigInt64Array) => {
      const t = slots.length;
      const f: Record<string, HostTensor> = {
        ids: int64([b, t], ids),
        position_ids: int64([b, t], positions),
        cache_position: int64([t], slots),
        cache_mask: int64([b, s], cacheMask),
      };
      for (const [name, cache] of caches) f[name] = cache;
      return f;
    };

    // Prefill: the left-padded prompts in one pass.
    const ids = new BigInt64Array(b * p).fill(BigInt(this.padId));
    const positions = new BigInt64Array(b * p);
    rows.forEach((r, i) => {
      for (let t = 0; t < r.prompt.length; t++) {
        ids[i * p + pads[i] + t] = BigInt(r.prompt[t]);
        positions[i * p + pads[i] + t] = BigInt(t);
      }
    });
    const slots = BigInt64Array.from({ length: p }, (_, t) => BigInt(t));
    const images = rows.some((r) => r.images.length) ? rows.map((r) => r.images) : null;
    const prefill = await this.stepProgram(b, p, s, images);
    const prefillFeeds = feeds(ids, positions, slots);
    if (images) Object.assign(prefillFeeds, this.runner.vlm().imageInputs.feeds(images));
    let out = await prefill.run(prefillFeeds);
    write(out, 0, p);

    const decode = await this.stepProgram(b, 1, s);
    for (let slot = p; ; slot++) {
      if (this.step(rows, out.next_logits, settings)) return;
      const next = new BigInt64Array(b);
      const pos = new BigInt64Array(b);
      rows.forEach((r, i) => {
        next[i] = BigInt(r.finish ? this.padId : r.tokens[r.tokens.length - 1]);
        pos[i] = BigInt(slot - pads[i] - shifts[i]);
        cacheMask[i * s + slot] = 1n;
      });
      out = await decode.run(feeds(next, pos, BigInt64Array.of(BigInt(slot))));
      write(out, slot, 1);
    }
  }

  /**
   * Prefill (t = P, with the rows' images when given) or decode (t = 1) program: next-token logits [B, V] and the
   * new keys/values.
   */
  private stepProgram(b: number, t: number, s: number, images: ImageRows | null = null) {
    const m = this.model;
    const imageKey = images ? this.runner.vlm().imageInputs.signature(images) : '';
    const key = `${t === 1 ? 'decode' : 'prefill'}:${b}x${t}:${s}${imageKey ? `:${imageKey}` : ''}`;
    return this.runner.programs.get(key, (graph, pb) => {
      const cache = new KvCache(graph, {
        layers: m.numLayers,
        batch: b,
        kvHeads: m.numKvHeads,
        headDim: m.headDim,
        maxLength: s,
        newTokens: t,
        rowPositions: true,
        append: true,
      });
      const ids = graph.input('ids', 'int64', [b, t]);
      let logits: Value;
      if (images) {
        const vlm = this.runner.vlm();
        logits = vlm.forward(pb, { ids, cache, ...vlm.imageInputs.declare(graph, images) }).logits;
      } else logits = m.forward(pb, { ids, cache }).logits;
      const last = t === 1 ? logits : T.slice(logits, [1], [t - 1], [t]);
      return { next_logits: T.reshape(last, [b, m.vocabSize]), ...cache.newEntries() };
    });
  }
}

function isTokenIds(prompt: readonly number[] | PromptInput): prompt is readonly number[] {
  return Array.isArray(prompt);
}

/** Index of the earliest occurrence of any stop string in text, or -1. */
export function firstStop(text: string, stop: readonly string[]): number {
  let at = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** One-shot generation: compiles, generates, releases. Keep a Generator to reuse programs across calls. */
export async function generate(
  model: DecoderLm,
  weights: ReadonlyMap<string, HostTensor>,
  tokenizer: TextTokenizer,
  prompts: readonly Prompt[],
  options: GenerateOptions & GeneratorOptions = {},
): Promise<Generation[]> {
  const generator = new Generator(model, weights, tokenizer, options);
  try {
    return await generator.generate(prompts, options);
  } finally {
    await generator.release();
  }
}
