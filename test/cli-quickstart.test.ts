/**
 * `tlab quickstart` (what `npm start` runs): the built-in study validates; run on a reduced study it prints its
 * findings and the report's path, a rerun executes nothing, and a changed task config rebuilds that task and redoes
 * what depends on it (the built task folder is never reused for another config).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import { gridTask, tinyGpt2 } from './lab/tiny-study.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-quickstart-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

const grid = gridTask;
const gpt2 = (task: string, n_embd: number) => tinyGpt2(task, n_embd);
const reduced = (train: number) => ({
  name: 'reduced',
  tasks: { src: grid(1, train), target: grid(2, 24) },
  tokenizers: { shared: { build: 'word', from_tasks: ['src', 'target'] } },
  models: { a: gpt2('src', 16), b: gpt2('target', 16) },
  finetuning: { tasks: ['target'], strategies: ['full'], training: { max_steps: 6, batch_size: 16 } },
  evals: { nb_eval_samples: 6, inference: { max_tokens: 3 }, bootstrap: 20 },
  metrics: { estimators: ['logme', 'knn'], target_tasks: ['target'] },
});

test('the built-in study is a valid experiment', () => {
  const r = tlab(['validate', 'examples/quickstart/experiment.yaml']);
  assert.equal(r.status, 0, r.stderr);
  const runs = Number(/(\d+) runs/.exec(r.stdout)![1]);
  assert.ok(runs > 50, r.stdout);
  assert.match(r.stdout, /13 pretrain/, 'eight GPT-2s, the VLM and four ViTs');
});

test('tlab quickstart prints the findings with the paths; a rerun does nothing; a changed task is rebuilt', () => {
  const file = join(root, 'reduced.yaml');
  const out = join(root, 'out');
  writeFileSync(file, YAML.stringify(reduced(20)));
  let r = tlab(['quickstart', '--config', file, '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /2 zoo models pre-trained, 2 fine-tuned models, 4 models evaluated on 2 tasks/);
  assert.match(r.stdout, /target 'target': each zoo model fine-tuned on it/);
  assert.match(r.stdout, /best predictor: (logme|knn)/);
  assert.match(r.stdout, /uninformative: 2 models/);
  assert.match(r.stdout, /report: .*report\/index\.html/);
  assert.ok(existsSync(join(out, 'report', 'index.html')));
  r = tlab(['quickstart', '--config', file, '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\(0 runs executed now\)/);
  const dataRun = () =>
    JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')).runs.find(
      (x: { stage: string; name: string }) => x.stage === 'data' && x.name === 'src',
    );
  const before = dataRun().id;
  const manifest = () =>
    JSON.parse(readFileSync(join(out, 'formatted_datasets', 'src', 'manifest.json'), 'utf8'));
  assert.equal(manifest().splits.train.rows, 20);
  writeFileSync(file, YAML.stringify(reduced(12)));
  r = tlab(['quickstart', '--config', file, '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.notEqual(dataRun().id, before, 'a new config is a new run');
  assert.equal(manifest().splits.train.rows, 12, 'the task was rebuilt from the new config');
  assert.match(r.stdout, /\((\d+) runs executed now\)/);
  const executed = Number(/\((\d+) runs executed now\)/.exec(r.stdout)![1]);
  // src's data, the tokenizer and everything downstream of them (all but target's data).
  assert.ok(executed >= 10, r.stdout);
});
