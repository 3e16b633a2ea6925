/**
 * A tiny LLaVA-style VLM (ViT tower, linear projector, GPT-2 decoder) trained on the 2×2 grid-world image task;
 * `runGeometry` then probes its vision tower's patch embeddings for the object in each grid cell, one linear
 * probe per cell trained across images and tested on held-out images. Stated margin: every cell's held-out
 * accuracy ≥ 0.8 and ≥ 0.3 above its majority baseline (each cell holds one of 4 objects of the image), and the
 * per-cell heatmap is written. The decoder's last-token states get an ID / ARI profile in the same run, and the
 * vision-token ablations (image tokens replaced by one-hot cell codes, by the cells' word embeddings, or zeros)
 * report accuracy and a profile per mode.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseGeometryConfig } from '../../src/geometry/config.ts';
import { runGeometry } from '../../src/geometry/run.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-geometry-vlm-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('patch probes of a trained tiny VLM read the object at every grid cell well above chance', async () => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  grid:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 160, test: 120 }, modality: image, rows: 2, cols: 2, vocab_subset_size: 4, questions_per_image: 1, cell_size: 16 }\n    dedupe: false\n',
  );
  const built = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(built.status, 0, built.stderr);
  writeFileSync(
    join(root, 'vlm.yaml'),
    `name: vlm
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'grid')}, seq_len: 80 }
tokenizer: { build: word }
model:
  config:
    model_type: llava
    mm_projector_type: linear
    vision_feature_select_strategy: default
    vision_feature_layer: -1
    vision_config: { model_type: vit, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, image_size: 32, patch_size: 8 }
    text_config: { model_type: gpt2, n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }
training: { max_steps: 60, batch_size: 16, lr: 0.003, warmup_steps: 5, eval_every: 60, eval_batches: 1 }
`,
  );
  const trained = tlab(['pretrain', join(root, 'vlm.yaml'), '--quiet']);
  assert.equal(trained.status, 0, trained.stderr);

  const config = parseGeometryConfig({
    task: join(root, 'tasks', 'grid'),
    split: 'test',
    states: 'norm-input', // the text decoder's ln_1 inputs (a VLM's own model type is llava)
    labels: ['label', 'field:row'],
    analysis: { maxk: 40, range_max: 16, id_scale: 4, density_k: 8 },
    conditions: [{ name: 'vlm', model: join(root, 'models', 'vlm') }],
    patch_probe: { condition: 'vlm', where: 'vision', layers: [0, -1] },
    ablations: { condition: 'vlm', limit: 60 },
  });
  const summary = await runGeometry(config, { outDir: root });
  const pp = summary.patchProbe!;
  assert.equal(pp.results.length, 2);
  for (const r of pp.results) {
    assert.ok(r.images > 110 && r.images <= 120, `${r.images} distinct images`); // a 2×2 grid can repeat by chance
    assert.deepEqual(r.patchesPerCell, [
      [4, 4],
      [4, 4],
    ]);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++) {
        const acc = r.accuracy[i][j];
        assert.ok(
          acc >= 0.8 && acc >= r.majority[i][j] + 0.3,
          `layer ${r.layer} cell (${i}, ${j}): accuracy ${acc} vs majority ${r.majority[i][j]}`,
        );
      }
  }
  for (const l of [0, 2])
    assert.ok(existsSync(join(root, 'geometry', 'plots', `patch_probe_vision_layer_${l}.png`)));
  // the decoder's profile over the same prompts (with their images)
  const profile = summary.profiles.vlm;
  assert.ok(profile.length >= 2, 'layers with distinct last-token states');
  for (const p of profile) assert.ok(p.id > 0 && Number.isFinite(p.labels!.label.ari));
  assert.ok(existsSync(join(root, 'geometry', 'plots', 'id_vs_layer.svg')));
  // vision-token ablations: every mode answers and gets a profile; replacing the image tokens moves the states
  const ab = summary.ablations!;
  assert.deepEqual(
    ab.modes.map((m) => m.mode),
    ['image', 'one-hot', 'cell-text', 'zeros'],
  );
  for (const m of ab.modes) {
    assert.equal(m.n, 60);
    assert.ok(m.accuracy >= 0 && m.accuracy <= 1);
    assert.ok(m.layers.length >= 1 && m.layers.every((p) => p.id > 0), m.mode);
  }
  const last = (mode: string) => ab.modes.find((m) => m.mode === mode)!.layers.at(-1)!.id;
  assert.notEqual(last('one-hot'), last('image'));
  assert.notEqual(last('cell-text'), last('one-hot'));
  for (const f of ['ablation_id_vs_layer.png', 'ablation_ari_vs_layer.png'])
    assert.ok(existsSync(join(root, 'geometry', 'plots', f)), f);
});
