/**
 * Answer bodies in OpenAI's layout: chat.completion, text_completion, their streamed chunks, and the two
 * logprobs layouts (chat's `content: [{token, logprob, bytes, top_logprobs}]` and the legacy completions'
 * parallel lists with `text_offset`, which lm-evaluation-harness reads for log-likelihood).
 */
import { randomUUID } from 'node:crypto';
import type { TextTokenizer } from '../../tokenize/types.ts';
import type { GenerationOutput, TokenLogprob } from '../inference/local-model.ts';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

export function completionId(prefix: 'chatcmpl' | 'cmpl'): string {
  return `${prefix}-${randomUUID().replaceAll('-', '')}`;
}

/** The text of one token as clients see it (special tokens included). */
export function tokenText(tokenizer: TextTokenizer, id: number): string {
  return id < tokenizer.vocabSize ? tokenizer.decode([id]) : '';
}

/** Chat logprobs: one entry per generated token with its `topK` alternatives. */
export function chatLogprobs(
  tokenizer: TextTokenizer,
  scored: readonly TokenLogprob[],
  topK: number,
): { content: unknown[] } {
  const entry = (id: number, logprob: number) => {
    const token = tokenText(tokenizer, id);
    return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  };
  return {
    content: scored.map((s) => ({
      ...entry(s.id, s.logprob),
      top_logprobs: s.top.slice(0, topK).map((t) => entry(t.id, t.logprob)),
    })),
  };
}

/** Lengths in code points (Python's len, which text_offset counts in) of the decoded prefixes of ids. */
export function prefixOffsets(tokenizer: TextTokenizer, ids: readonly number[], start = 0): number[] {
  const known = (xs: readonly number[]) => xs.filter((id) => id < tokenizer.vocabSize);
  const out: number[] = [];
  for (let i = start; i < ids.length; i++) out.push(codePoints(tokenizer.decode(known(ids.slice(0, i)))));
  return out;
}

export function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Legacy completions logprobs of tokens `from..` of `ids` (the prompt's first token has no log-probability):
 * token strings, their log-probabilities, the top `topK` alternatives (plus the token itself, as vLLM), and each
 * token's character offset in the returned text.
 */
export function completionLogprobs(
  tokenizer: TextTokenizer,
  ids: readonly number[],
  scored: readonly TokenLogprob[],
  from: number,
  topK: number,
  offsetBase: number,
): {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
} {
  const tokens: string[] = [];
  const tokenLogprobs: (number | null)[] = [];
  const top: (Record<string, number> | null)[] = [];
  const offsets = prefixOffsets(tokenizer, ids, from);
  const textOffset = offsets.map((o) => o - (from > 0 ? offsets[0] : 0) + offsetBase);
  for (let t = from; t < ids.length; t++) {
    tokens.push(tokenText(tokenizer, ids[t]));
    if (t === 0) {
      tokenLogprobs.push(null);
      top.push(null);
      continue;
    }
    const s = scored[t - 1];
    tokenLogprobs.push(s.logprob);
    const alternatives: Record<string, number> = {};
    for (const alt of s.top.slice(0, topK)) alternatives[tokenText(tokenizer, alt.id)] ??= alt.logprob;
    alternatives[tokenText(tokenizer, s.id)] = s.logprob;
    top.push(alternatives);
  }
  return { tokens, token_logprobs: tokenLogprobs, top_logprobs: top, text_offset: textOffset };
}

/**
 * The final text split into per-token pieces for streaming: each piece is what one more generated token adds to
 * the decoded text, held back while the decoded prefix is not yet a prefix of the final text (a cut stop string,
 * a partial UTF-8 character).
 */
export function textDeltas(tokenizer: TextTokenizer, output: GenerationOutput): string[] {
  const final = output.text;
  const deltas: string[] = [];
  let emitted = 0;
  const known = output.tokenIds.filter((id) => id < tokenizer.vocabSize);
  for (let k = 1; k <= known.length && emitted < final.length; k++) {
    const prefix = tokenizer.decode(known.slice(0, k), { skipSpecialTokens: true });
    const end = Math.min(prefix.length, final.length);
    if (end > emitted && final.startsWith(prefix.slice(0, end))) {
      deltas.push(final.slice(emitted, end));
      emitted = end;
    }
  }
  if (emitted < final.length) deltas.push(final.slice(emitted));
  return deltas;
}
