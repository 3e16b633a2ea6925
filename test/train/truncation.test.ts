/**
 * Answers cut off by data.seq_len: counted per example with the batcher's window (targets are labels 1..min(len-1,
 * seqLen)), a training split that keeps no answer at all is refused, and a partly cut split is warned about.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IGNORE } from '../../src/train/examples.ts';
import { checkTruncation, truncationStats } from '../../src/train/truncation.ts';

const I = IGNORE;
/** A prompt of `prompt` tokens followed by an answer of `answer` tokens. */
const row = (prompt: number, answer: number) => ({
  ids: Array.from({ length: prompt + answer }, (_, i) => i),
  labels: [...Array(prompt).fill(I), ...Array.from({ length: answer }, (_, i) => 100 + i)],
});

test('per example: the answer is kept, cut short or lost, by where it falls against the window', () => {
  // seq_len 6: labels 1..6 are trained. Answer at 4..5 kept; at 5..7 cut (5, 6 kept); at 7..8 lost.
  const s = truncationStats('train', [row(4, 2), row(5, 3), row(7, 2)], 6);
  assert.deepEqual(s, { split: 'train', rows: 3, answers_lost: 1, answers_cut: 1, longest: 9 });
  // The last label of a window is still trained (the next token is known past the cut): an answer at 6 is kept.
  assert.equal(truncationStats('x', [row(6, 1)], 6).answers_lost, 0);
  assert.equal(truncationStats('x', [row(7, 1)], 6).answers_lost, 1);
  // An example without an answer is neither lost nor cut.
  assert.deepEqual(truncationStats('x', [{ ids: [1, 2], labels: [I, I] }], 1).answers_lost, 0);
});

test('a training split with no answer left is refused, naming the field and the seq_len that would do', () => {
  const lost = truncationStats('train', [row(10, 2), row(12, 1)], 8);
  assert.throws(
    () => checkTruncation('run.yaml', 8, [lost], 'train'),
    (e: Error & { details?: string }) =>
      /^run\.yaml: data\.seq_len: 8 tokens cut off the answer of every example of split 'train' \(2\)/.test(
        e.message,
      ) && /at least 13/.test(e.details ?? ''),
  );
  // The same in the eval split only warns: training still has its targets.
  const writes: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => writes.push(s) > 0) as typeof process.stderr.write;
  try {
    checkTruncation(
      'run.yaml',
      8,
      [truncationStats('train', [row(2, 2)], 8), { ...lost, split: 'test' }],
      'train',
    );
    checkTruncation('run.yaml', 8, [truncationStats('train', [row(2, 2), row(7, 3)], 8)], 'train');
  } finally {
    process.stderr.write = write;
  }
  assert.equal(writes.length, 2);
  assert.match(writes[0], /split 'test': 2 of 2 example\(s\) lose their whole answer/);
  assert.match(writes[1], /split 'train': 0 of 2 example\(s\) lose their whole answer and 1 part of it/);
});
