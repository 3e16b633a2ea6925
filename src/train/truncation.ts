/**
 * Answers cut off by `data.seq_len`. The batcher keeps the first seq_len tokens of each example, so an example
 * whose answer starts past the window trains on nothing: a training split where that holds for every example
 * has a loss of exactly 0 and learns nothing while looking converged. Image placeholders make this easy to hit
 * (a VLM's image expands to many tokens before the question and answer).
 */
import { TlabError } from '../util/errors.ts';
import { IGNORE } from './examples.ts';

export interface TruncationStats {
  split: string;
  rows: number;
  /** Examples that keep none of their answer tokens (they add nothing to the loss). */
  answers_lost: number;
  /** Examples that keep part of their answer (the end is cut off). */
  answers_cut: number;
  /** The longest example, in tokens: a seq_len that loses nothing. */
  longest: number;
}

/**
 * Counts, per example, the answer tokens inside the window. The batcher's target at position t is label t + 1
 * for t < min(length, seqLen), so the trained labels are 1..min(length - 1, seqLen).
 */
export function truncationStats(
  split: string,
  rows: readonly { ids: readonly number[]; labels: readonly number[] }[],
  seqLen: number,
): TruncationStats {
  let lost = 0;
  let cut = 0;
  let longest = 0;
  for (const r of rows) {
    longest = Math.max(longest, r.ids.length);
    let kept = 0;
    let total = 0;
    for (let i = 1; i < r.labels.length; i++) {
      if (r.labels[i] === IGNORE) continue;
      total++;
      if (i <= seqLen) kept++;
    }
    if (total > 0 && kept === 0) lost++;
    else if (kept < total) cut++;
  }
  return { split, rows: rows.length, answers_lost: lost, answers_cut: cut, longest };
}

/**
 * Refuses a training split whose every answer lies past seq_len (nothing to learn); warns on stderr when some
 * answers are lost or cut short, with the seq_len that would keep them all (even when quiet: such results are not
 * what they seem).
 */
export function checkTruncation(
  file: string,
  seqLen: number,
  splits: readonly TruncationStats[],
  trainSplit: string,
): void {
  for (const s of splits) {
    if (s.rows === 0 || (s.answers_lost === 0 && s.answers_cut === 0)) continue;
    const fix = `raise data.seq_len to at least ${s.longest} (the longest example) or shorten the prompts`;
    if (s.split === trainSplit && s.answers_lost === s.rows)
      throw new TlabError(
        `${file}: data.seq_len: ${seqLen} tokens cut off the answer of every example of split '${s.split}' (${s.rows}); training would see no target and report a loss of 0`,
        fix,
      );
    process.stderr.write(
      `warning: ${file}: data.seq_len ${seqLen}: split '${s.split}': ${s.answers_lost} of ${s.rows} example(s) lose their whole answer and ${s.answers_cut} part of it to truncation\n  ${fix}\n`,
    );
  }
}
