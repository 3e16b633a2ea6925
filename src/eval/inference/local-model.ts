/**
 * One model folder in this process, ready for inference: the model, its tokenizer and chat template, one
 * Generator (KV cache, compiled programs kept across calls) and its ForwardRunner for scoring. The in-process
 * backend and `tlab serve` both drive models through this class, so they answer the same request the same way.
 *
 * Calls are serialised (one batch at a time on the model); callers that want batching hand over many items per
 * call. Items are grouped into Generator calls by the settings a call shares; greedy results do not depend on
 * how items are grouped or batched (the Generator gives every row its own positions).
 */
import { basename, resolve } from 'node:path';
import type { PreprocessConfig } from '../../data/images/preprocess.ts';
import {
  type ImageProcessor,
  loadImageProcessor,
  prepareVlmImage,
} from '../../data/images/qwen2-vl-processor.ts';
import type { SessionConfig } from '../../engine/runtime/session.ts';
import type { HostTensor } from '../../engine/tensor.ts';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import type { DecoderLm, Vlm, VlmImage } from '../../models/types.ts';
import { countImagePlaceholders, isVlm } from '../../models/vlm.ts';
import type { TextTokenizer } from '../../tokenize/types.ts';
import { TlabError } from '../../util/errors.ts';
import { Generator, type FinishReason as GeneratorFinish, type PromptInput } from '../generate.ts';
import { loglikelihoodTokens, type LoglikResult as TokenLoglik, type TokenPair } from '../loglik.ts';
import { chatStopIds, imagesOf, renderChatPrompt } from './chat-render.ts';
import { readImageSource } from './image-source.ts';
import type {
  BackendCapabilities,
  DecodingParams,
  FinishReason,
  ImageSource,
  InferenceMessage,
} from './types.ts';

export interface LocalModelOptions {
  /** The name requests address the model by; default the folder's name. */
  name?: string;
  /** Prompts per forward pass; default 16. */
  batchSize?: number;
  session?: SessionConfig;
  /**
   * Pad a call's last, partial batch with copies of a prompt up to a power of two (results dropped), so a server
   * seeing every batch size compiles programs for log2(batchSize) + 1 of them; default false.
   */
  roundBatches?: boolean;
}

/** A prompt ready for the model: token ids (one placeholder per image) and the images' sources. */
export interface EncodedPrompt {
  ids: number[];
  images: ImageSource[];
}

export interface GenerationItem {
  prompt: EncodedPrompt;
  params: DecodingParams;
  /** Stop token ids; default the chat stop ids (EOS and the template's end-of-turn token). */
  stopIds?: readonly number[];
}

export interface GenerationOutput {
  text: string;
  /** Generated ids, without a final stop token. */
  tokenIds: number[];
  finishReason: FinishReason;
  /** The stop token that ended generation, when one did. */
  stopTokenId: number | null;
  promptTokens: number;
  completionTokens: number;
}

/** Log-probability of one token given those before it, with the most likely alternatives. */
export interface TokenLogprob {
  id: number;
  logprob: number;
  /** Every later token of the prompt is the argmax (as the graph computed it). */
  greedy: boolean;
  /** The `topK` most likely tokens at this position, best first (empty when topK is 0). */
  top: { id: number; logprob: number }[];
}

/** Preprocessed image files kept (an image shared by many prompts is decoded once). */
const PIXEL_CACHE = 256;

/** Logits of one forward batch are at most this many floats (the rest wait for the next pass). */
const LOGIT_BUDGET = 32 * 1024 * 1024;

export class LocalModel {
  readonly name: string;
  readonly dir: string;
  readonly model: DecoderLm;
  readonly tokenizer: TextTokenizer;
  readonly generator: Generator;
  readonly capabilities: BackendCapabilities;
  /** Chat stop ids: the tokenizer's stop ids and the template's end-of-turn token. */
  readonly stopIds: readonly number[];
  readonly batchSize: number;
  private readonly roundBatches: boolean;
  private readonly preprocess: ImageProcessor | null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly pixelCache = new Map<string, VlmImage>();

  private constructor(
    dir: string,
    model: DecoderLm,
    weights: ReadonlyMap<string, HostTensor>,
    tokenizer: TextTokenizer,
    preprocess: ImageProcessor | null,
    options: LocalModelOptions,
  ) {
    this.dir = dir;
    this.name = options.name ?? basename(resolve(dir));
    this.model = model;
    this.tokenizer = tokenizer;
    this.preprocess = preprocess;
    this.batchSize = options.batchSize ?? 16;
    this.roundBatches = options.roundBatches ?? false;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new TlabError(`batchSize: expected a positive integer, got ${this.batchSize}`);
    this.generator = new Generator(model, weights, tokenizer, { session: options.session });
    this.stopIds = chatStopIds(tokenizer);
    this.capabilities = {
      // Each image fills `imageTokens` positions of the context, and the answer needs at least one more.
      maxImages: isVlm(model) ? Math.floor((model.maxPositions - 1) / model.imageTokens) : 0,
      loglik: true,
      contextLength: model.maxPositions,
    };
  }

  /** Loads a model folder holding a causal LM or a LLaVA-style VLM and its tokenizer. */
  static load(dir: string, options: LocalModelOptions = {}): LocalModel {
    const folder = loadModelFolder(dir);
    if (folder.kind !== 'causal-lm' && folder.kind !== 'vlm')
      throw new TlabError(
        `${dir}: the folder holds a ${folder.kind} (config.json architectures); inference needs a causal LM or a VLM`,
      );
    if (!folder.tokenizer) throw new TlabError(`${dir}: no tokenizer.json (inference needs the tokenizer)`);
    let preprocess: ImageProcessor | null = null;
    if (folder.kind === 'vlm')
      preprocess = folder.preprocessorConfig
        ? loadImageProcessor(folder.preprocessorConfig)
        : { kind: 'fixed', config: defaultPreprocessor(folder.model.encoder.imageSize) };
    return new LocalModel(dir, folder.model, folder.weights, folder.tokenizer, preprocess, options);
  }

  /** A model already in memory (tests, benchmarks); VLMs need their preprocessing config. */
  static fromParts(
    dir: string,
    model: DecoderLm,
    weights: ReadonlyMap<string, HostTensor>,
    tokenizer: TextTokenizer,
    options: LocalModelOptions & { preprocess?: PreprocessConfig } = {},
  ): LocalModel {
    const preprocess: ImageProcessor | null = isVlm(model)
      ? { kind: 'fixed', config: options.preprocess ?? defaultPreprocessor(model.encoder.imageSize) }
      : null;
    return new LocalModel(dir, model, weights, tokenizer, preprocess, options);
  }

  /** The conversation rendered with the chat template and its generation prompt; `where` names it in errors. */
  encodeChat(messages: readonly InferenceMessage[], where: string): EncodedPrompt {
    const images = imagesOf(messages);
    this.checkImageCount(images.length, where);
    const text = this.withContext(where, () => renderChatPrompt(this.tokenizer, messages));
    const ids = this.withContext(where, () => this.tokenizer.encode(text, { addSpecialTokens: false }));
    return { ids, images };
  }

  /** Throws a TlabError saying the model cannot take `n` images. */
  checkImageCount(n: number, where: string): void {
    if (n === 0) return;
    if (this.capabilities.maxImages === 0)
      throw new TlabError(
        `${where}: ${n} image(s), but the ${this.model.modelType} model '${this.name}' takes no images (text only)`,
      );
    if (n > this.capabilities.maxImages)
      throw new TlabError(
        `${where}: ${n} images, but the model '${this.name}' takes at most ${this.capabilities.maxImages} per request`,
      );
  }

  /** Positions a prompt takes once each image placeholder is expanded to the model's image-token count. */
  expandedLength(ids: readonly number[]): number {
    if (!isVlm(this.model)) return ids.length;
    return ids.length + countImagePlaceholders(ids, this.model.imageTokenId) * (this.model.imageTokens - 1);
  }

  /**
   * Checks that ids fit the vocabulary and leave `room` positions in the context (image placeholders counted
   * expanded); `where` names the prompt.
   */
  checkPrompt(ids: readonly number[], where: string, room = 1): void {
    const v = this.model.vocabSize;
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= v);
    if (bad !== undefined)
      throw new TlabError(`${where}: token id ${bad} is outside the vocabulary 0..${v - 1}`);
    if (ids.length === 0) throw new TlabError(`${where}: the prompt is empty (no tokens to continue)`);
    const max = this.model.maxPositions;
    const n = this.expandedLength(ids);
    if (n + room > max)
      throw new TlabError(
        `${where}: the prompt has ${n} tokens${n === ids.length ? '' : ' with its images'}; this model's maximum context length is ${max} tokens`,
      );
  }

  /**
   * Generates for every item (results in item order). Items that share sampling settings and stop ids run as one
   * Generator call (batched by length); each keeps its own seed, token budget and stop strings.
   */
  generate(
    items: readonly GenerationItem[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<GenerationOutput[]> {
    return this.serialised(async () => {
      items.forEach((item, i) => {
        this.checkImageCount(item.prompt.images.length, `request ${i}`);
        this.checkPrompt(item.prompt.ids, `request ${i}`);
      });
      const inputs: PromptInput[] = [];
      for (const [i, item] of items.entries())
        inputs.push({
          ids: item.prompt.ids,
          images: await this.pixels(item.prompt.images, `request ${i}`),
          seed: item.params.seed,
          maxNewTokens: item.params.maxTokens,
          stop: item.params.stop,
        });
      const groups = new Map<string, number[]>();
      items.forEach((item, i) => {
        const key = groupKey(item.params, item.stopIds ?? this.stopIds);
        const list = groups.get(key);
        if (list) list.push(i);
        else groups.set(key, [i]);
      });
      const out: GenerationOutput[] = new Array(items.length);
      let done = 0;
      for (const indices of groups.values()) {
        const first = items[indices[0]];
        const stopIds = first.stopIds ?? this.stopIds;
        const p = first.params;
        const before = done;
        const prompts = indices.map((i) => inputs[i]);
        if (this.roundBatches) {
          const partial = prompts.length % this.batchSize;
          const padded = partial === 0 ? 0 : Math.min(2 ** Math.ceil(Math.log2(partial)), this.batchSize);
          for (let k = partial; k < padded; k++) prompts.push(prompts[0]);
        }
        const results = await this.generator.generate(prompts, {
          temperature: p.temperature,
          topK: p.topK,
          topP: p.topP,
          stopTokenIds: stopIds,
          batchSize: this.batchSize,
          onProgress: (n) => {
            done = before + Math.min(n, indices.length);
            onProgress?.(done, items.length);
          },
        });
        indices.forEach((index, k) => {
          out[index] = toOutput(results[k], stopIds);
        });
      }
      return out;
    });
  }

  /**
   * log p(continuation | context) for token-level pairs (lm-evaluation-harness semantics); a VLM's context holds
   * one placeholder per image of `images`.
   */
  loglik(
    pairs: readonly {
      context: readonly number[];
      continuation: readonly number[];
      images?: readonly ImageSource[];
    }[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<TokenLoglik[]> {
    return this.serialised(async () => {
      const withPixels: TokenPair[] = [];
      for (const [i, pair] of pairs.entries()) {
        const images = pair.images ?? [];
        this.checkImageCount(images.length, `loglik request ${i}`);
        withPixels.push({ ...pair, images: await this.pixels(images, `loglik request ${i}`) });
      }
      return loglikelihoodTokens(this.generator.runner, withPixels, {
        batchSize: this.batchSize,
        onProgress,
      });
    });
  }

  /**
   * Per row, every token's log-probability given the tokens before it (positions 1..n-1; the first token has
   * none), with the `topK` most likely tokens at each position: what /v1/completions returns for echo + logprobs.
   */
  promptLogprobs(
    rows: readonly (readonly number[])[],
    topK: number,
    images?: readonly (readonly VlmImage[])[],
  ): Promise<TokenLogprob[][]> {
    return this.serialised(async () => {
      const runner = this.generator.runner;
      const v = this.model.vocabSize;
      const out: TokenLogprob[][] = rows.map(() => []);
      const order = rows.map((_, i) => i).sort((a, b) => rows[b].length - rows[a].length || a - b);
      let start = 0;
      while (start < order.length) {
        const longest = rows[order[start]].length;
        const fit = topK > 0 ? Math.max(1, Math.floor(LOGIT_BUDGET / (longest * v))) : this.batchSize;
        const chunk = order.slice(start, start + Math.min(fit, this.batchSize));
        start += chunk.length;
        // Rows of one token have nothing to score; the forward pass still needs a target per position.
        const ids = chunk.map((i) => rows[i]);
        const targets = ids.map((r) => [...r.slice(1), 0]);
        const pixels =
          images && chunk.some((i) => images[i].length > 0) ? chunk.map((i) => images[i]) : undefined;
        const result = await runner.run(
          { ids, targets, images: pixels },
          { tokenLogprobs: true, logits: topK > 0 },
        );
        const len = result.length;
        chunk.forEach((rowIndex, r) => {
          const row = rows[rowIndex];
          for (let t = 0; t + 1 < row.length; t++) {
            const at = r * len + t;
            const top =
              topK > 0
                ? topTokens((result.logits!.data as Float32Array).subarray(at * v, (at + 1) * v), topK)
                : [];
            const logprob = result.tokenLogprobs![at];
            // The token's own entry carries the graph's value, so `logprob >= max(top)` holds when it is greedy.
            for (const entry of top) if (entry.id === row[t + 1]) entry.logprob = logprob;
            out[rowIndex].push({ id: row[t + 1], logprob, greedy: result.greedy![at] === 1, top });
          }
        });
      }
      return out;
    });
  }

  /** Each image preprocessed for the vision tower (pixels [C, H, W] or Qwen2-VL patches; files cached by path). */
  async pixels(images: readonly ImageSource[], where: string): Promise<VlmImage[]> {
    if (images.length === 0) return [];
    this.checkImageCount(images.length, where);
    const out: VlmImage[] = [];
    for (const [i, source] of images.entries()) {
      const key = 'path' in source ? source.path : null;
      const cached = key === null ? undefined : this.pixelCache.get(key);
      if (cached) {
        out.push(cached);
        continue;
      }
      const pixels = await this.preprocessImage(source, `${where} image ${i}`);
      if (key !== null) {
        if (this.pixelCache.size >= PIXEL_CACHE) this.pixelCache.delete(this.pixelCache.keys().next().value!);
        this.pixelCache.set(key, pixels);
      }
      out.push(pixels);
    }
    return out;
  }

  private async preprocessImage(source: ImageSource, where: string): Promise<VlmImage> {
    const vlm = this.model as Vlm;
    const { bytes } = await readImageSource(source, where);
    let image: VlmImage;
    try {
      image = await prepareVlmImage(bytes, this.preprocess!, where);
    } catch (error) {
      if (error instanceof TlabError)
        throw error.message.startsWith(where)
          ? error
          : new TlabError(`${where}: ${error.message}`, error.details);
      throw new TlabError(`${where}: cannot decode the image (${(error as Error).message})`);
    }
    // A processor whose output the tower cannot take (a fixed size that differs from the tower's) is an error here.
    vlm.imageInputs.tokens(image, `${where}: the preprocessed image`);
    return image;
  }

  async release(): Promise<void> {
    await this.serialised(() => this.generator.release());
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private withContext<T>(where: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof TlabError) throw new TlabError(`${where}: ${error.message}`, error.details);
      throw error;
    }
  }
}

/** Items with the same key can share one Generator call (seed, budget and stop strings are per prompt). */
function groupKey(p: DecodingParams, stopIds: readonly number[]): string {
  return JSON.stringify([p.temperature, p.topP, p.topK, stopIds]);
}

function toOutput(
  r: { text: string; tokenIds: number[]; finishReason: GeneratorFinish; promptTokens: number },
  stopIds: readonly number[],
): GenerationOutput {
  const last = r.tokenIds[r.tokenIds.length - 1];
  const eos = r.finishReason === 'eos' && stopIds.includes(last);
  const tokenIds = eos ? r.tokenIds.slice(0, -1) : r.tokenIds;
  return {
    text: r.text,
    tokenIds,
    finishReason: r.finishReason === 'length' ? 'length' : 'stop',
    stopTokenId: eos ? last : null,
    promptTokens: r.promptTokens,
    completionTokens: r.tokenIds.length,
  };
}

/** The k most likely tokens of one row of logits with their log-probabilities (float64 log-softmax), best first. */
export function topTokens(logits: Float32Array, k: number): { id: number; logprob: number }[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const best: { id: number; value: number }[] = [];
  for (let i = 0; i < logits.length; i++) {
    const value = logits[i];
    if (best.length === k && value <= best[k - 1].value) continue;
    let j = best.length < k ? best.length : k - 1;
    if (best.length < k) best.push({ id: i, value });
    while (j > 0 && best[j - 1].value < value) {
      best[j] = best[j - 1];
      j--;
    }
    best[j] = { id: i, value };
  }
  return best.map((b) => ({ id: b.id, logprob: b.value - logZ }));
}

/** A ViT-style processor for a VLM folder without preprocessor_config.json (what training uses from scratch). */
function defaultPreprocessor(size: number): PreprocessConfig {
  return {
    resize: { height: size, width: size },
    resample: 3,
    rescale: 1 / 255,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  };
}
