/**
 * Fine-tuning a Qwen2-VL folder (`tlab model init qwen2-vl-tiny`, random weights, the hub's key names) on an image
 * task through the trainer: the component strategies and LoRA change exactly the tensors they name — the merger
 * alone for {projector: full}, the vision blocks alone for {encoder: full}, and for LoRA on q_proj/v_proj exactly
 * the language model's q_proj/v_proj weights (merged), never the vision tower's attention — and the loss falls.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { readJsonl } from '../../src/train/logging/jsonl-log.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-qwen2-vl-train-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
const base = join(root, 'base');

before(() => {
  let r = tlab(['model', 'init', 'qwen2-vl-tiny', '--out', base, '--seed', '1']);
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  shapes:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 32 }, modality: image, rows: 1, cols: 1, vocab_subset_size: 4, questions_per_image: 1, cell_size: 28 }\n    user_prompt: Which shape?\n    dedupe: false\n',
  );
  r = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
});

/** Fine-tunes the base with a strategy block; the names of the tensors that changed, and the train losses. */
function finetune(name: string, strategy: string, steps = 3): { changed: string[]; losses: number[] } {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'shapes')}, seq_len: 64 }
model: { from: ${base} }
strategy:
${strategy}
training: { max_steps: ${steps}, batch_size: 8, lr: 0.01, log_every: 1 }
`,
  );
  const r = tlab(['finetune', file, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const before = loadModelFolder(base).weights;
  const after = loadModelFolder(join(root, 'models', name)).weights;
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'the same tensors, hub names');
  const changed = [...after]
    .filter(([n, t]) =>
      (t.data as Float32Array).some((v, i) => v !== (before.get(n)!.data as Float32Array)[i]),
    )
    .map(([n]) => n)
    .sort();
  const losses = readJsonl(join(root, 'logs', name, 'metrics.jsonl'))
    .records.filter((x) => x.split === 'train')
    .map((x) => x.loss as number);
  return { changed, losses };
}

test('components: the projector (merger) alone, then the vision blocks alone', () => {
  const names = [...loadModelFolder(base).weights.keys()];
  const projector = finetune(
    'projector',
    '  kind: components\n  components: { encoder: frozen, projector: full, decoder: frozen }',
  );
  assert.deepEqual(projector.changed, names.filter((n) => n.startsWith('visual.merger.')).sort());
  const encoder = finetune(
    'encoder',
    '  kind: components\n  components: { encoder: full, projector: frozen, decoder: frozen }',
  );
  assert.ok(encoder.changed.length > 0);
  assert.ok(
    encoder.changed.every((n) => n.startsWith('visual.') && !n.startsWith('visual.merger.')),
    encoder.changed.join(', '),
  );
  assert.ok(encoder.changed.some((n) => n.startsWith('visual.blocks.')));
});

test('LoRA on q_proj/v_proj: exactly the language model’s q_proj and v_proj weights change, and the loss falls', () => {
  const names = [...loadModelFolder(base).weights.keys()];
  const lora = finetune('lora', '  kind: lora\n  lora: { r: 4, alpha: 8, targets: [q_proj, v_proj] }', 12);
  const expected = names.filter((n) =>
    /^model\.(language_model\.)?layers\.\d+\.self_attn\.[qv]_proj\.weight$/.test(n),
  );
  assert.ok(expected.length > 0);
  assert.deepEqual(lora.changed, expected.sort());
  assert.ok(lora.losses.at(-1)! < lora.losses[0], `losses ${lora.losses.map((l) => l.toFixed(3)).join(' ')}`);
});
