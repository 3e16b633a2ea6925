/**
 * Fine-tuning a Qwen2-VL folder (`tlab model init qwen2-vl-tiny`, random weights, the hub's key names) on an image
 * task through the trainer: the component strategies and LoRA change exactly the tensors they name — the merger
 * alone for {projector: full}, the vision tower but the merger for {encoder: full}, LoRA adapters merged into the
 * named targets of the LoRA component only, and for LoRA on q_proj/v_proj exactly the language model's
 * q_proj/v_proj weights (merged), never the vision tower's attention — and the loss falls.
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
data: { task: ${join(root, 'tasks', 'shapes')}, seq_len: 96 }
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
  assert.deepEqual(
    encoder.changed,
    names.filter((n) => n.startsWith('visual.') && !n.startsWith('visual.merger.')).sort(),
  );
});

test('components with LoRA: adapters on the component named, merged into exactly its target tensors', () => {
  const names = [...loadModelFolder(base).weights.keys()];
  // The same target name in both towers' vocabulary would be ambiguous; the component prefix settles it.
  const encoder = finetune(
    'encoder-lora',
    '  kind: components\n  components: { encoder: lora, projector: frozen, decoder: frozen }\n  lora: { r: 2, alpha: 4, targets: [qkv, fc1] }',
  );
  assert.deepEqual(
    encoder.changed,
    names.filter((n) => /^visual\.blocks\.\d+\.(attn\.qkv|mlp\.fc1)\.weight$/.test(n)).sort(),
  );
  const mixed = finetune(
    'mixed',
    '  kind: components\n  components: { encoder: frozen, projector: full, decoder: lora }\n  lora: { r: 2, alpha: 4, targets: [o_proj] }',
  );
  assert.deepEqual(
    mixed.changed,
    names
      .filter(
        (n) => n.startsWith('visual.merger.') || /^model\.layers\.\d+\.self_attn\.o_proj\.weight$/.test(n),
      )
      .sort(),
  );
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
