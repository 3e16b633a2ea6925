/**
 * Several images per example in training: a tiny LLaVA-style VLM pre-trained from scratch on an NLVR2-style
 * image-pair task (synthetic:image-pairs) whose statement is always the same — "Both images contain a red object."
 * — about two one-object scenes coloured red or blue. The text tells nothing, so the best text-only guess is the
 * majority label (computed here from the validation split, ~55%); the answer needs both images (true only when
 * both are red). Stated margin: answer accuracy >= 90% and at least 25 points above the text-only guess, after
 * 1000 steps (about 25 s on 2 cores).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const root = mkdtempSync(join(tmpdir(), 'tlab-vlm-pairs-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('a tiny VLM trained on image pairs beats the best text-only guess by a clear margin', () => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    `tasks:
  pairs:
    dataset: synthetic:image-pairs
    generator:
      splits: { train: 320, validation: 64 }
      templates: [both_color]
      query_colors: [red]
      colors: [red, blue]
      min_objects: 1
      max_objects: 1
      lattice: 1
      image_size: 32
    dedupe: false
`,
  );
  const built = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(built.status, 0, built.stderr);
  const rows = readFileSync(join(root, 'tasks', 'pairs', 'validation.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { answer: string; messages: { content: { type: string }[] }[] });
  assert.ok(rows.every((r) => r.messages[0].content.filter((p) => p.type === 'image').length === 2));
  const trueShare = rows.filter((r) => r.answer === 'True').length / rows.length;
  const textOnly = Math.max(trueShare, 1 - trueShare);

  writeFileSync(
    join(root, 'vlm.yaml'),
    `name: pairs
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'pairs')}, seq_len: 96 }
tokenizer: { build: word }
model:
  config:
    model_type: llava
    mm_projector_type: linear
    vision_feature_select_strategy: full
    vision_feature_layer: -1
    vision_config: { model_type: vit, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, image_size: 32, patch_size: 16 }
    text_config: { model_type: gpt2, n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }
training: { max_steps: 1000, batch_size: 16, lr: 0.003, warmup_steps: 10, eval_every: 1000, eval_batches: 4 }
`,
  );
  const r = tlab(['pretrain', join(root, 'vlm.yaml'), '--quiet', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  // Teacher-forced exact match of the whole answer (content tokens; the always-predictable end marker not counted).
  const answer = summary.eval.exact_match as number;
  const said = `exact match ${answer.toFixed(3)}, best text-only guess ${textOnly.toFixed(3)}`;
  assert.ok(answer >= 0.9, said);
  assert.ok(answer - textOnly >= 0.25, said);
});
