/**
 * Unknown-token rates of a tokenised task split. A tokenizer built from another task can map most of a target
 * task to its unknown token; a model then learns to predict the unknown token, and its accuracy looks perfect.
 * Every command that tokenises a task measures this per split, overall and over answer (assistant) tokens.
 */
import type { TaskExample } from '../data/task-format.ts';
import type { ChatMessage, TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import { chatExample, IGNORE } from './examples.ts';

/** Default share of a split's tokens that may be unknown before a command warns (training refuses). */
export const DEFAULT_UNKNOWN_TOKEN_THRESHOLD = 0.01;

export interface UnknownTokenRate {
  split: string;
  rows: number;
  tokens: number;
  unknown: number;
  /** unknown / tokens (0 for an empty split). */
  rate: number;
  /** Answer tokens: the assistant turns' (the trained-on targets). */
  answer_tokens: number;
  answer_unknown: number;
  answer_rate: number;
}

/**
 * The tokenizer's unknown-token id, or undefined when it has none that can occur: byte-level BPE tokenizers
 * (GPT-2's) name EOS as their unk_token, and counting EOS as unknown would flag every conversation.
 */
export function distinctUnknownId(tokenizer: TextTokenizer): number | undefined {
  const unk = tokenizer.unkId;
  if (unk === undefined) return undefined;
  const others = [tokenizer.eosId, tokenizer.bosId, tokenizer.padId, ...tokenizer.stopIds];
  return others.includes(unk) ? undefined : unk;
}

/** Counts unknown tokens of token rows (labels, when given, mark the answer tokens; IGNORE elsewhere). */
export function unknownTokenRate(
  split: string,
  rows: readonly { ids: readonly number[]; labels?: readonly number[] }[],
  unkId: number | undefined,
): UnknownTokenRate {
  let tokens = 0;
  let unknown = 0;
  let answerTokens = 0;
  let answerUnknown = 0;
  for (const r of rows) {
    tokens += r.ids.length;
    r.ids.forEach((id, i) => {
      const isUnk = unkId !== undefined && id === unkId;
      if (isUnk) unknown++;
      if (r.labels && r.labels[i] !== IGNORE) {
        answerTokens++;
        if (isUnk) answerUnknown++;
      }
    });
  }
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    split,
    rows: rows.length,
    tokens,
    unknown,
    rate: ratio(unknown, tokens),
    answer_tokens: answerTokens,
    answer_unknown: answerUnknown,
    answer_rate: ratio(answerUnknown, answerTokens),
  };
}

function toChat(e: TaskExample): ChatMessage[] {
  return e.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' })),
  }));
}

/**
 * Tokenises a task split's conversations with the chat template (answers = assistant turns) and counts unknown
 * tokens; without a chat template, the prompt and answer texts are encoded one after the other.
 */
export function taskUnknownTokenRate(
  tokenizer: TextTokenizer,
  split: string,
  examples: readonly TaskExample[],
): UnknownTokenRate {
  const unk = distinctUnknownId(tokenizer);
  const rows = examples.map((e) => {
    if (tokenizer.hasChatTemplate && e.messages.some((m) => m.role === 'assistant'))
      try {
        return chatExample(tokenizer, toChat(e), { uid: e.uid });
      } catch (error) {
        // A template that does not render prefix-consistently: count the texts one by one instead.
        if (!(error instanceof TlabError)) throw error;
      }
    const ids: number[] = [];
    const labels: number[] = [];
    for (const m of e.messages)
      for (const p of m.content) {
        if (p.type !== 'text') continue;
        const part = tokenizer.encode(p.text, { addSpecialTokens: false });
        ids.push(...part);
        labels.push(...part.map((id) => (m.role === 'assistant' ? id : IGNORE)));
      }
    return { ids, labels };
  });
  return unknownTokenRate(split, rows, unk);
}

/**
 * What is wrong with a split's rate, or null: more than `threshold` of its tokens unknown, or any answer token.
 */
export function unknownTokenProblem(r: UnknownTokenRate, threshold: number): string | null {
  if (r.rate <= threshold && r.answer_unknown === 0) return null;
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return (
    `split '${r.split}': ${pct(r.rate)} of its tokens (${r.unknown} of ${r.tokens}) and ${pct(r.answer_rate)} of its answer tokens (${r.answer_unknown} of ${r.answer_tokens}) are the tokenizer's unknown token` +
    ` (threshold ${pct(threshold)} of tokens, or any answer token)`
  );
}

/** How to fix it, for the error's or warning's details. */
export const UNKNOWN_TOKEN_ADVICE =
  'the tokenizer cannot encode this task: share one vocabulary across tasks (tokenizer: {build: word, from_tasks: [...]}, or tokenizers: in a lab config), or load a tokenizer that covers it; a target that is the unknown token never counts as correct';

/** Prints each problem on stderr, loudly: results of such a split are not what they seem. */
export function warnUnknownTokens(where: string, problems: readonly string[]): void {
  for (const p of problems) process.stderr.write(`warning: ${where}: ${p}\n  ${UNKNOWN_TOKEN_ADVICE}\n`);
}
