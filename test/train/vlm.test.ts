/**
 * A tiny LLaVA-style VLM (ViT tower, linear projector, GPT-2 decoder) pre-trained from scratch on a synthetic image
 * task: "Which shape?" about a one-cell grid-world image (8 shapes). Text alone cannot tell: the best text-only
 * answer is the most frequent shape (~16%); the decoder first learns that, then, after a plateau of ~200 steps,
 * to read the image. Stated margin: answer accuracy >= 60% (chance 12.5%).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-vlm-'));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('a tiny VLM learns to name the shape in the image (answer accuracy >= 60% vs 12.5% chance) in seconds', () => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  shapes:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 240, validation: 48 }, modality: image, rows: 1, cols: 1, vocab_subset_size: 4, questions_per_image: 1, cell_size: 16 }\n    user_prompt: Which shape?\n    dedupe: false\n',
  );
  const built = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(built.status, 0, built.stderr);
  writeFileSync(
    join(root, 'vlm.yaml'),
    `name: vlm
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'shapes')}, seq_len: 80 }
tokenizer: { build: word }
model:
  config:
    model_type: llava
    mm_projector_type: linear
    vision_feature_select_strategy: full
    vision_feature_layer: -1
    vision_config: { model_type: vit, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, image_size: 16, patch_size: 8 }
    text_config: { model_type: gpt2, n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }
training: { max_steps: 400, batch_size: 16, lr: 0.003, warmup_steps: 10, eval_every: 400, eval_batches: 3 }
`,
  );
  const r = tlab(['pretrain', join(root, 'vlm.yaml'), '--quiet', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  // Teacher-forced exact match of the whole answer (content tokens; the always-predictable end marker not counted).
  assert.ok(
    summary.eval.exact_match >= 0.6,
    `exact match ${summary.eval.exact_match} (content-token accuracy ${summary.eval.accuracy})`,
  );
  const saved = loadModelFolder(join(root, 'models', 'vlm'));
  assert.equal(saved.kind, 'vlm');
  assert.ok(saved.preprocessorConfig, 'preprocessor_config.json saved with the model');
  assert.equal(JSON.parse(readFileSync(saved.preprocessorConfig!, 'utf8')).size.height, 16);
});

test('VLM component strategy: frozen vision tower, full projector, LoRA decoder (with its own learning rate)', () => {
  const base = loadModelFolder(join(root, 'models', 'vlm'));
  writeFileSync(
    join(root, 'components.yaml'),
    `name: parts
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'shapes')}, seq_len: 80 }
model: { from: ${join(root, 'models', 'vlm')} }
strategy:
  kind: components
  components: { encoder: frozen, projector: full, decoder: lora }
  lora: { r: 2, alpha: 4, targets: [c_attn] }
  learning_rates: { projector: 0.01, decoder: 0.001 }
training: { max_steps: 3, batch_size: 8 }
`,
  );
  const r = tlab(['finetune', join(root, 'components.yaml'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const tuned = loadModelFolder(join(root, 'models', 'parts'));
  for (const [name, t] of tuned.weights) {
    const same = (t.data as Float32Array).every(
      (v, i) => v === (base.weights.get(name)!.data as Float32Array)[i],
    );
    const expectChange =
      name.startsWith('multi_modal_projector.') ||
      /^language_model\.h\.\d+\.attn\.c_attn\.weight$/.test(name);
    assert.equal(!same, expectChange, name);
  }
});
