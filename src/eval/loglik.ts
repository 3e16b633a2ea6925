/**
 * Log-likelihood of continuations given contexts, with lm-evaluation-harness semantics (HFLM.loglikelihood):
 * trailing spaces of the context move to the continuation, context + continuation are encoded together and the
 * continuation tokens are what follows the context's own encoding; an empty context becomes the BOS (else EOS)
 * token; sequences longer than the context window keep their last tokens. The score is the sum of the
 * continuation tokens' log-probabilities, plus whether every one of them is the argmax (greedy) token.
 * Multiple-choice questions score each choice so and report acc and acc_norm style predictions.
 */

import type { VlmImage } from '../models/types.ts';
import { countImagePlaceholders, expandImagePlaceholders } from '../models/vlm.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import type { ForwardRunner } from './forward.ts';
import { argmax } from './sampling.ts';

export interface LoglikRequest {
  context: string;
  continuation: string;
}

export interface LoglikResult {
  /** Sum of log p(continuation token | everything before it). */
  loglik: number;
  /** Every continuation token is the model's argmax. */
  isGreedy: boolean;
  /** Number of continuation tokens. */
  tokens: number;
}

export interface LoglikOptions {
  /** Sequences per forward pass; default 8. */
  batchSize?: number;
  /** Add the tokenizer's special tokens when encoding (the harness's add_bos_token); default false. */
  addSpecialTokens?: boolean;
}

/** Context and continuation token ids as the harness builds them. */
export function encodePair(
  tokenizer: TextTokenizer,
  context: string,
  continuation: string,
  addSpecialTokens = false,
): { context: number[]; continuation: number[] } {
  const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens });
  if (context === '') {
    const prefix = tokenizer.bosId ?? tokenizer.eosId;
    if (prefix === undefined)
      throw new TlabError(
        'loglikelihood: an empty context needs a BOS or EOS token, and the tokenizer has neither',
      );
    return { context: [prefix], continuation: encode(continuation) };
  }
  const spaces = context.length - context.trimEnd().length;
  if (spaces > 0) {
    continuation = context.slice(-spaces) + continuation;
    context = context.slice(0, -spaces);
  }
  const whole = encode(context + continuation);
  const ctx = encode(context);
  return { context: ctx, continuation: whole.slice(ctx.length) };
}

/** A token-level request; a VLM's context holds one image placeholder token per image in `images`. */
export interface TokenPair {
  context: readonly number[];
  continuation: readonly number[];
  /** The context's images preprocessed (pixels [C, H, W], or Qwen2-VL patches with a grid), in placeholder order. */
  images?: readonly VlmImage[];
}

/** Log-likelihoods of token-level (context, continuation) pairs, batched longest first. */
export async function loglikelihoodTokens(
  runner: ForwardRunner,
  pairs: readonly TokenPair[],
  options: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<LoglikResult[]> {
  const window = runner.model.maxPositions;
  const inputs = pairs.map((pair, i) => {
    if (pair.continuation.length === 0)
      throw new TlabError(`loglikelihood: request ${i} has an empty continuation (after tokenization)`);
    const images = pair.images ?? [];
    let context = pair.context;
    if (images.length > 0) {
      const vlm = runner.vlm();
      const placeholders = countImagePlaceholders(context, vlm.imageTokenId);
      if (placeholders !== images.length)
        throw new TlabError(
          `loglikelihood: request ${i} has ${images.length} image(s) for ${placeholders} image placeholder token(s); give one image per placeholder`,
        );
      context = expandImagePlaceholders(
        context,
        vlm.imageTokenId,
        images.map((image, k) => vlm.imageInputs.tokens(image, `loglikelihood: request ${i} image ${k}`)),
      );
    }
    // The harness's (context + continuation)[-(window + 1):][:-1]: inputs and next-token targets.
    const all = [...context, ...pair.continuation];
    const whole = all.slice(-(window + 1));
    if (images.length > 0 && whole.length < all.length)
      throw new TlabError(
        `loglikelihood: request ${i} has ${all.length} tokens with its images; cutting it to the model's context of ${window} would cut image tokens`,
      );
    return { ids: whole.slice(0, -1), targets: whole.slice(1), n: pair.continuation.length, images };
  });
  const order = inputs.map((_, i) => i).sort((a, b) => inputs[b].ids.length - inputs[a].ids.length || a - b);
  const batch = options.batchSize ?? 8;
  const results: LoglikResult[] = new Array(pairs.length);
  for (let start = 0; start < order.length; start += batch) {
    const chunk = order.slice(start, start + batch).map((i) => ({ i, ...inputs[i] }));
    const out = await runner.run(
      {
        ids: chunk.map((c) => c.ids),
        targets: chunk.map((c) => c.targets),
        images: chunk.some((c) => c.images.length) ? chunk.map((c) => c.images) : undefined,
      },
      { tokenLogprobs: true },
    );
    const len = out.length;
    chunk.forEach((c, r) => {
      const end = r * len + c.ids.length;
      let loglik = 0;
      let isGreedy = true;
      for (let t = end - Math.min(c.n, c.ids.length); t < end; t++) {
        loglik += out.tokenLogprobs![t];
        isGreedy &&= out.greedy![t] === 1;
      }
      results[c.i] = { loglik, isGreedy, tokens: c.n };
    });
    options.onProgress?.(Math.min(start + batch, order.length), order.length);
  }
  return results;
}

/** Log-likelihoods of text requests (see the module comment for the tokenization rules). */
export async function loglikelihood(
  runner: ForwardRunner,
  tokenizer: TextTokenizer,
  requests: readonly LoglikRequest[],
  options: LoglikOptions = {},
): Promise<LoglikResult[]> {
  const pairs = requests.map((r) =>
    encodePair(tokenizer, r.context, r.continuation, options.addSpecialTokens ?? false),
  );
  return loglikelihoodTokens(runner, pairs, options);
}

export interface MultipleChoiceOptions extends LoglikOptions {
  /** Put between the context and each choice, as the harness's target_delimiter; default " ". */
  delimiter?: string;
  /** Length unit of acc_norm: characters (code points, as the harness's len()) or UTF-8 bytes; default chars. */
  lengthUnit?: 'chars' | 'bytes';
}

export interface MultipleChoiceScore {
  /** Per choice: the summed log-likelihood. */
  logliks: number[];
  /** Per choice: log-likelihood divided by the choice's length (acc_norm). */
  normalized: number[];
  isGreedy: boolean[];
  /** Index of the highest log-likelihood (acc). */
  best: number;
  /** Index of the highest normalized log-likelihood (acc_norm). */
  bestNormalized: number;
}

/** Scores each choice as a continuation of `context`. */
export async function scoreMultipleChoice(
  runner: ForwardRunner,
  tokenizer: TextTokenizer,
  context: string,
  choices: readonly string[],
  options: MultipleChoiceOptions = {},
): Promise<MultipleChoiceScore> {
  if (choices.length === 0) throw new TlabError('scoreMultipleChoice: no choices given');
  const delimiter = options.delimiter ?? ' ';
  const results = await loglikelihood(
    runner,
    tokenizer,
    choices.map((c) => ({ context, continuation: delimiter + c })),
    options,
  );
  const logliks = results.map((r) => r.loglik);
  const unit = options.lengthUnit ?? 'chars';
  // Like the harness, the bare choice's length (without the delimiter).
  const lengths = choices.map((c) => (unit === 'bytes' ? Buffer.byteLength(c, 'utf8') : [...c].length));
  const normalized = logliks.map((l, i) => l / lengths[i]);
  return {
    logliks,
    normalized,
    isGreedy: results.map((r) => r.isGreedy),
    best: argmax(logliks),
    bestNormalized: argmax(normalized),
  };
}

/** A model and tokenizer bound together for scoring: `scorer.scoreMultipleChoice(context, choices)`. */
export class LoglikScorer {
  constructor(
    readonly runner: ForwardRunner,
    readonly tokenizer: TextTokenizer,
    readonly options: MultipleChoiceOptions = {},
  ) {}

  loglikelihood(requests: readonly LoglikRequest[]): Promise<LoglikResult[]> {
    return loglikelihood(this.runner, this.tokenizer, requests, this.options);
  }

  scoreMultipleChoice(context: string, choices: readonly string[]): Promise<MultipleChoiceScore> {
    return scoreMultipleChoice(this.runner, this.tokenizer, context, choices, this.options);
  }
}
