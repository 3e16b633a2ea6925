/** Pre-train → save a Hugging Face folder → fine-tune it with LoRA → the saved model loads and generates. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-finetune-'));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('pre-train a Llama from scratch, then LoRA-fine-tune the saved folder; the result loads, merged, and generates', () => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  grid:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 30, validation: 6 }, modality: text, rows: 2, cols: 2, vocab_subset_size: 3, questions_per_image: 2 }\n',
  );
  assert.equal(
    tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']).status,
    0,
  );
  const common = `out: ${root}\nseed: 2\ndata: { task: ${join(root, 'tasks', 'grid')}, seq_len: 64 }\n`;
  writeFileSync(
    join(root, 'pre.yaml'),
    `name: base\n${common}tokenizer: { build: word }\nmodel: { config: { model_type: llama, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 } }\ntraining: { max_steps: 6, batch_size: 4, lr: 0.003 }\n`,
  );
  const pre = tlab(['pretrain', join(root, 'pre.yaml'), '--quiet', '--json']);
  assert.equal(pre.status, 0, pre.stderr);
  const base = loadModelFolder(join(root, 'models', 'base'));
  assert.equal(base.kind, 'causal-lm');
  assert.ok(base.tokenizer, 'the built tokenizer was saved with the model');

  writeFileSync(
    join(root, 'ft.yaml'),
    `name: lora\n${common}model: { from: ${join(root, 'models', 'base')} }\nstrategy: { kind: lora, lora: { r: 4, alpha: 8, targets: [q_proj, v_proj] } }\ntraining: { max_steps: 5, batch_size: 4, lr: 0.01 }\n`,
  );
  const ft = tlab(['finetune', join(root, 'ft.yaml'), '--quiet', '--json']);
  assert.equal(ft.status, 0, ft.stderr);
  const tuned = loadModelFolder(join(root, 'models', 'lora'));
  const changed = [...tuned.weights].filter(([n, t]) =>
    (t.data as Float32Array).some((v, i) => v !== (base.weights.get(n)!.data as Float32Array)[i]),
  );
  assert.ok(
    changed.length > 0 && changed.every(([n]) => /self_attn\.(q|v)_proj\.weight$/.test(n)),
    `changed: ${changed.map(([n]) => n)}`,
  );
  assert.ok(
    ![...tuned.weights.keys()].some((n) => n.includes('lora_')),
    'adapters merged into the saved weights',
  );

  const gen = tlab([
    'generate',
    '-m',
    join(root, 'models', 'lora'),
    '-p',
    '<|user|>| a | b |',
    '-n',
    '4',
    '--json',
  ]);
  assert.equal(gen.status, 0, gen.stderr);
  assert.equal(JSON.parse(gen.stdout.trim().split('\n')[0]).completion_tokens, 4);
});
