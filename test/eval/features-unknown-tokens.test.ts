/**
 * `tlab metrics features` on a task its model's tokenizer cannot encode: a loud warning and the rate in
 * features.json (estimators on features of <unk> prompts rank nothing); `-q` keeps stderr to warnings.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { loadTaskSplit } from '../../src/data/read.ts';
import { buildDataTokenizer } from '../../src/train/data-tokenizer.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-features-unk-'));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
const model = join(root, 'model');

before(async () => {
  const grid = (vocab: string) =>
    `    dataset: synthetic:grid-world\n    generator: { splits: { train: 12 }, modality: text, rows: 1, cols: 2, questions_per_image: 1, vocab: ${vocab}, vocab_subset_size: 3 }\n`;
  writeFileSync(
    join(root, 'tasks.yaml'),
    `tasks:\n  shapes:\n${grid('[square, triangle, circle]')}  fruits:\n${grid('[apple, pear, plum]')}`,
  );
  const r = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  // The fixture GPT-2 with a word tokenizer built from the shapes task only.
  cpSync('test/fixtures/models/gpt2_lm', model, { recursive: true });
  rmSync(join(model, 'tokenizer.json'));
  rmSync(join(model, 'tokenizer_config.json'));
  buildDataTokenizer('word', await loadTaskSplit(join(root, 'tasks', 'shapes'), 'train')).save(model);
});

function features(task: string, extra: string[] = []) {
  const out = join(root, `out-${task}`);
  const r = tlab(['metrics', 'features', model, join(root, 'tasks', task), '-o', out, ...extra]);
  assert.equal(r.status, 0, r.stderr);
  return {
    stderr: r.stderr,
    stdout: r.stdout,
    json: JSON.parse(readFileSync(join(out, 'features.json'), 'utf8')),
  };
}

test('a task the tokenizer cannot encode is warned about, with its rates in features.json', () => {
  const r = features('fruits');
  assert.match(
    r.stderr,
    /warning: .*fruits under .*model's tokenizer: split 'train': \d+\.\d% of its tokens/,
  );
  const u = r.json.unknown_tokens;
  assert.equal(u.split, 'train');
  // Every answer is one fruit word (then the end-of-turn token): each of them is unknown.
  assert.equal(u.answer_unknown, u.rows, JSON.stringify(u));
  assert.ok(u.rate > 0.1, JSON.stringify(u));
});

test('a task the tokenizer covers gets no warning; -q leaves stderr empty and --json still prints', () => {
  const r = features('shapes', ['-q', '--json']);
  assert.equal(r.stderr, '');
  assert.equal(JSON.parse(r.stdout).unknown_tokens.unknown, 0);
  assert.equal(r.json.unknown_tokens.answer_unknown, 0);
});
