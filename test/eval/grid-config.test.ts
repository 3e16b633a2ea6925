/** Grid config details that need no model: checkpoint folders (epoch_N / step_N) and the evaluation subset. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chooseCheckpoint } from '../../src/eval/grid/config.ts';
import { subsetIndices } from '../../src/eval/grid/samples.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-grid-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('checkpoint_to_eval: -1 is the latest checkpoint folder, N picks epoch_N / step_N, others are refused', () => {
  const dir = join(root, 'run');
  for (const name of ['epoch_1', 'epoch_3', 'step-10', 'notes']) {
    mkdirSync(join(dir, name), { recursive: true });
    if (name !== 'notes') writeFileSync(join(dir, name, 'config.json'), '{}');
  }
  mkdirSync(join(dir, 'epoch_7'));
  assert.equal(chooseCheckpoint(dir, -1, 'g'), join(dir, 'step-10'));
  assert.equal(chooseCheckpoint(dir, 3, 'g'), join(dir, 'epoch_3'));
  assert.throws(
    () => chooseCheckpoint(dir, 7, 'g'),
    /checkpoint_to_eval 7: .* has no such checkpoint; valid: 1, 3, 10/,
  );
  const folder = join(root, 'plain');
  mkdirSync(folder);
  writeFileSync(join(folder, 'config.json'), '{}');
  assert.equal(chooseCheckpoint(folder, 5, 'g'), folder, 'a model folder is itself, whatever the checkpoint');
  assert.throws(() => chooseCheckpoint(join(root, 'none'), -1, 'g'), /model folder not found/);
});

test('the evaluation subset is seeded, sorted, the same for every call, and all rows when n is null or large', () => {
  const a = subsetIndices(100, 10, 0, 'task');
  assert.equal(a.length, 10);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.deepEqual(subsetIndices(100, 10, 0, 'task'), a);
  assert.notDeepEqual(subsetIndices(100, 10, 1, 'task'), a);
  assert.notDeepEqual(subsetIndices(100, 10, 0, 'other'), a);
  assert.deepEqual(subsetIndices(5, null, 0, 't'), [0, 1, 2, 3, 4]);
  assert.deepEqual(subsetIndices(5, 9, 0, 't'), [0, 1, 2, 3, 4]);
});
