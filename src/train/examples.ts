/**
 * Token examples for causal-LM training: ids plus per-token labels (-100 = not trained on). Chat examples train
 * on assistant turns only (as TRL's assistant-only loss), found by rendering the conversation up to each assistant
 * turn and checking that the rendering of the longer conversation extends it token for token.
 */
import type { ChatMessage, TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';

export const IGNORE = -100;

export interface TokenExample {
  ids: number[];
  /** Same length as ids; IGNORE where the token is context only. */
  labels: number[];
  uid?: string;
  /** Image files of the example in placeholder order (VLMs: their features replace the placeholder runs). */
  images?: readonly string[];
}

/**
 * Expands each image placeholder into copies, one per image feature (as LLaVA's and Qwen2-VL's processors do):
 * `count` each, or the k-th placeholder into count[k] (images whose token counts differ); never trained on.
 */
export function expandImageTokens(
  example: TokenExample,
  imageTokenId: number,
  count: number | readonly number[],
): TokenExample {
  const ids: number[] = [];
  const labels: number[] = [];
  let k = 0;
  example.ids.forEach((id, i) => {
    const n = id !== imageTokenId ? 1 : typeof count === 'number' ? count : (count[k++] ?? 0);
    for (let k = 0; k < n; k++) {
      ids.push(id);
      labels.push(id === imageTokenId ? IGNORE : example.labels[i]);
    }
  });
  return { ...example, ids, labels };
}

/** Plain text: every token is trained on (pre-training). */
export function textExample(tokenizer: TextTokenizer, text: string, uid?: string): TokenExample {
  const ids = tokenizer.encode(text);
  if (tokenizer.eosId !== undefined && ids[ids.length - 1] !== tokenizer.eosId) ids.push(tokenizer.eosId);
  return { ids, labels: [...ids], uid };
}

export interface ChatExampleOptions {
  /** 'assistant' (default): loss on assistant turns only; 'all': on every token. */
  trainOn?: 'assistant' | 'all';
}

/** A conversation tokenized with the chat template; labels cover the assistant turns. */
export function chatExample(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
  options: ChatExampleOptions & { uid?: string } = {},
): TokenExample {
  const ids = tokenizer.encodeChat(messages);
  if (options.trainOn === 'all') return { ids, labels: [...ids], uid: options.uid };
  const labels = new Array<number>(ids.length).fill(IGNORE);
  let found = false;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = tokenizer.encodeChat(messages.slice(0, i), { addGenerationPrompt: true });
    const through = tokenizer.encodeChat(messages.slice(0, i + 1));
    if (!isPrefix(before, through) || !isPrefix(through, ids)) {
      throw new TlabError(
        `example ${options.uid ?? ''}: the chat template does not render conversations prefix-consistently, so assistant tokens cannot be located; use trainOn: all`,
      );
    }
    for (let k = before.length; k < through.length; k++) labels[k] = ids[k];
    found = true;
  });
  if (!found) throw new TlabError(`example ${options.uid ?? ''}: no assistant message to train on`);
  return { ids, labels, uid: options.uid };
}

function isPrefix(a: readonly number[], b: readonly number[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
