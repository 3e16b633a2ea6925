/**
 * Which answer tokens count for accuracy, and what accuracy chance gives. Special tokens (the end of turn, role
 * markers) are always predictable, so counting them inflates token accuracy (about 50% for one-word answers
 * whatever the model knows); the unknown token must never count as a correct prediction.
 */
import type { TaskExample } from '../data/task-format.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { IGNORE, type TokenExample } from './examples.ts';

/** The target ids of `examples` that are special tokens, plus the unknown token: excluded from accuracy. */
export function nonContentTargetIds(tokenizer: TextTokenizer, examples: readonly TokenExample[]): number[] {
  const targets = new Set<number>();
  for (const e of examples) for (const l of e.labels) if (l !== IGNORE) targets.add(l);
  const out = new Set<number>();
  if (tokenizer.unkId !== undefined) out.add(tokenizer.unkId);
  for (const id of targets) {
    // A special token decodes to nothing when special tokens are skipped, and to its text otherwise.
    const special =
      tokenizer.decode([id], { skipSpecialTokens: true }) === '' &&
      tokenizer.decode([id], { skipSpecialTokens: false }) !== '';
    if (special) out.add(id);
  }
  return [...out].sort((a, b) => a - b);
}

export interface ChanceBaseline {
  /** The training split's most frequent answer (ties: the first in code-point order). */
  majority_answer: string;
  /** Share of the evaluated split's rows whose answer is that one: the exact match of always answering it. */
  exact_match: number;
  split: string;
  rows: number;
}

/** The majority-answer baseline, or null when the task's rows carry no reference answers. */
export function majorityAnswerBaseline(
  train: readonly TaskExample[],
  evaluated: readonly TaskExample[],
  split: string,
): ChanceBaseline | null {
  const counts = new Map<string, number>();
  for (const e of train) if (e.answer !== undefined) counts.set(e.answer, (counts.get(e.answer) ?? 0) + 1);
  if (counts.size === 0) return null;
  let majority = '';
  let most = -1;
  for (const [answer, n] of [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    if (n > most) {
      majority = answer;
      most = n;
    }
  const scored = evaluated.filter((e) => e.answer !== undefined);
  const hits = scored.filter((e) => e.answer === majority).length;
  return {
    majority_answer: majority,
    exact_match: hits / Math.max(scored.length, 1),
    split,
    rows: scored.length,
  };
}
