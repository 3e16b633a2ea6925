/**
 * The real thing: `tlab pretrain` killed with SIGKILL mid-training, then run again, continues the loss curve
 * exactly as an uninterrupted run does.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';

const root = mkdtempSync(join(tmpdir(), 'tlab-cli-train-'));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

function config(out: string, extra = ''): string {
  mkdirSync(out, { recursive: true });
  const path = join(out, 'pretrain.yaml');
  writeFileSync(
    path,
    `name: tiny
out: ${out}
seed: 1
data: { task: ${join(root, 'tasks', 'grid')}, seq_len: 64 }
tokenizer: { build: word }
model: { config: { model_type: gpt2, n_layer: 1, n_embd: 32, n_head: 2 } }
training: { max_steps: 40, batch_size: 8, lr: 0.003, save_every: 5, eval_every: 20, eval_batches: 2 }
${extra}`,
  );
  return path;
}

const losses = (out: string) =>
  readFileSync(join(out, 'logs', 'tiny', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map(({ time: _t, ...r }) => r);

before(() => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  grid:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 40, validation: 8 }, modality: text, rows: 2, cols: 2, vocab_subset_size: 3, questions_per_image: 2 }\n',
  );
  const r = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
});

describe('tlab pretrain', () => {
  test('killed with SIGKILL and restarted, it resumes from the last checkpoint and the log matches an uninterrupted run', async () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    const full = tlab(['pretrain', config(a), '--quiet', '--json']);
    assert.equal(full.status, 0, full.stderr);
    assert.equal(JSON.parse(full.stdout).steps, 40);

    const child = spawn(process.execPath, ['bin/tlab.js', 'pretrain', config(b), '--quiet'], {
      stdio: 'ignore',
    });
    const latest = join(b, 'checkpoints', 'tiny', 'latest');
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (existsSync(latest) && readFileSync(latest, 'utf8').trim() >= 'step-00000015') {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(poll);
        reject(new Error('training finished before it could be killed'));
      });
    });
    await new Promise((r) => child.on('exit', r));
    const resumed = tlab(['pretrain', config(b), '--quiet', '--json']);
    assert.equal(resumed.status, 0, resumed.stderr);
    const summary = JSON.parse(resumed.stdout);
    assert.ok(summary.resumedFrom >= 15 && summary.resumedFrom < 40, `resumed from ${summary.resumedFrom}`);
    assert.deepEqual(losses(b), losses(a));
    assert.deepEqual(
      readFileSync(join(b, 'models', 'tiny', 'model.safetensors')),
      readFileSync(join(a, 'models', 'tiny', 'model.safetensors')),
    );
  });

  test('bad configs fail with one line naming the file and field', () => {
    const out = join(root, 'bad');
    const bad = tlab(['pretrain', config(out, 'strategy: { kind: lora }'), '--quiet']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.split('\n')[0], /^error: .*pretrain\.yaml: strategy\.lora: LoRA is used/);
    writeFileSync(
      join(out, 'x.yaml'),
      'name: x\ndata: { task: nowhere, seq_len: 8 }\ntokenizer: { build: char }\nmodel: { config: { model_type: gpt2 } }\ntraining: { max_steps: 0 }\n',
    );
    const zero = tlab(['pretrain', join(out, 'x.yaml')]);
    assert.match(zero.stderr.split('\n')[0], /^error: .*x\.yaml: training\.max_steps: /);
    writeFileSync(
      join(out, 'y.yaml'),
      'name: y\ndata: { task: nowhere, seq_len: 8 }\ntokenizer: { build: char }\nmodel: { config: { model_type: gpt2 } }\ntraining: { max_steps: 3 }\n',
    );
    const missing = tlab(['pretrain', join(out, 'y.yaml')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr.split('\n')[0], /^error: .*nowhere.*manifest\.json/);
    const finetune = tlab(['finetune', config(join(root, 'ft'))]);
    assert.match(finetune.stderr.split('\n')[0], /^error: .*model\.from: tlab finetune needs a model folder/);
  });
});
