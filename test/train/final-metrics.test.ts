/**
 * The final loss and evaluation of a run resumed at its last step (killed after its last checkpoint, before its
 * model was saved) come from metrics.jsonl; a session that trained steps reports its own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { finalMetrics } from '../../src/train/final-metrics.ts';

const dir = mkdtempSync(join(tmpdir(), 'tlab-final-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'metrics.jsonl'),
  [
    { step: 0, time: 1, split: 'data', train_rows: 8 },
    { step: 5, time: 2, split: 'train', loss: 2.5, lr: 0.1 },
    { step: 10, time: 3, split: 'train', loss: 1.25, lr: 0.1 },
    { step: 10, time: 3, split: 'eval', loss: 1.5, accuracy: 0.75, exact_match: 0.5, tokens: 8, rows: 4 },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n')
    .concat('\n'),
);

test('a session that trained nothing reads the last logged train loss and evaluation', () => {
  assert.deepEqual(finalMetrics(dir, [], []), {
    trainLoss: 1.25,
    eval: { step: 10, loss: 1.5, accuracy: 0.75, exact_match: 0.5, tokens: 8, rows: 4 },
  });
});

test("a session's own figures win; no log means none", () => {
  const own = { step: 12, loss: 0.5, accuracy: 1 };
  assert.deepEqual(finalMetrics(dir, [0.7, 0.6], [own]), { trainLoss: 0.6, eval: own });
  assert.deepEqual(finalMetrics(join(dir, 'none'), [], []), { trainLoss: null, eval: null });
});
