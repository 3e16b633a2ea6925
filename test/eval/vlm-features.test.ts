/**
 * `tlab metrics features` for a VLM reads the images (issue 9, item 8): decoder states after the image tokens
 * equal a forward pass built here from the chat template, the placeholder expansion and the processor's pixels, and
 * change with the image; `--source vision` gives the vision tower's CLS features; the output says which features
 * were taken; a chat template that fails to render is an error, not a fall-back to plain text.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { preprocessImageBytes } from '../../src/data/images/preprocess.ts';
import { loadTaskSplit } from '../../src/data/read.ts';
import { ForwardRunner } from '../../src/eval/forward.ts';
import { visionPreprocessorFor } from '../../src/eval/images.ts';
import { extractTaskFeatures } from '../../src/eval/task-features.ts';
import { encodeTaskPrompt } from '../../src/eval/task-prompt.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import type { Vlm } from '../../src/models/types.ts';
import { expandImagePlaceholders } from '../../src/models/vlm.ts';
import { maxRelDiff } from '../engine/helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-vlm-features-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
const task = join(root, 'data', 'shapes');
const model = join(root, 'models', 'vlm');

before(() => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    YAML.stringify({
      tasks: {
        shapes: {
          dataset: 'synthetic:grid-world',
          generator: {
            splits: { train: 12 },
            modality: 'image',
            rows: 1,
            cols: 1,
            vocab_subset_size: 3,
            questions_per_image: 1,
            cell_size: 16,
          },
          user_prompt: 'Which shape?',
          dedupe: false,
        },
      },
    }),
  );
  let r = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'data'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(
    join(root, 'vlm.yaml'),
    YAML.stringify({
      name: 'vlm',
      out: root,
      data: { task, seq_len: 48 },
      tokenizer: { build: 'word' },
      model: {
        config: {
          model_type: 'llava',
          mm_projector_type: 'linear',
          vision_feature_select_strategy: 'full',
          vision_feature_layer: -1,
          vision_config: {
            model_type: 'vit',
            hidden_size: 16,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 32,
            image_size: 16,
            patch_size: 8,
          },
          text_config: { model_type: 'gpt2', n_embd: 16, n_layer: 2, n_head: 2 },
        },
      },
      training: { max_steps: 2, batch_size: 4 },
    }),
  );
  r = tlab(['pretrain', join(root, 'vlm.yaml'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
});

test('VLM features are the decoder states over the prompt with its image, and depend on the image', async () => {
  const folder = loadModelFolder(model);
  const vlm = folder.model as Vlm;
  const r = await extractTaskFeatures(folder, task, {
    split: 'train',
    pooling: 'last',
    layer: -1,
    batchSize: 5,
  });
  assert.match(
    r.kind,
    /VLM decoder hidden state -1, last prompt token, prompts with their images \(up to 1 per prompt\)/,
  );
  // The reference: chat template → one placeholder per image → expanded → the processor's pixels → one forward.
  const examples = await loadTaskSplit(task, 'train');
  const processor = visionPreprocessorFor(folder.preprocessorConfig, vlm.encoder);
  const prompt = encodeTaskPrompt(folder.tokenizer!, examples[4], task);
  assert.equal(prompt.images.length, 1);
  const pixels = (await preprocessImageBytes(readFileSync(prompt.images[0]), processor)).data;
  const ids = expandImagePlaceholders(prompt.ids, vlm.imageTokenId, vlm.imageTokens);
  const runner = new ForwardRunner(vlm, folder.weights);
  try {
    const alone = await runner.features([ids], { pooling: ['last'], layers: [-1], images: [[pixels]] });
    const d = r.features.shape[1];
    const row = (r.features.data as Float32Array).slice(4 * d, 5 * d);
    assert.ok(maxRelDiff(row, [...alone.get('last')!.values()][0].data as Float32Array) < 1e-5);
    const other = await runner.features([ids], {
      pooling: ['last'],
      layers: [-1],
      images: [[pixels.map((v) => -v)]],
    });
    assert.ok(
      maxRelDiff(row, [...other.get('last')!.values()][0].data as Float32Array) > 1e-3,
      'the image matters',
    );
  } finally {
    await runner.release();
  }
});

test('--source vision: the vision tower CLS features, named as such; the CLI writes the kind', async () => {
  const folder = loadModelFolder(model);
  const r = await extractTaskFeatures(folder, task, { split: 'train', pooling: 'cls', source: 'vision' });
  assert.equal(r.features.shape[1], (folder.model as Vlm).encoder.hiddenSize);
  assert.match(r.kind, /VLM vision tower cls features/);
  const out = join(root, 'feats');
  const c = tlab(['metrics', 'features', model, task, '--out', out, '--pooling', 'last', '--json']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(JSON.parse(c.stdout).kind, /prompts with their images/);
  assert.match(
    JSON.parse(readFileSync(join(out, 'features.json'), 'utf8')).kind,
    /prompts with their images/,
  );
  const bad = tlab(['metrics', 'features', model, task, '--out', out, '--source', 'text']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--source: 'text' is not one of decoder, vision/);
});

test('a chat template that fails to render is an error naming the example, not a silent fall-back', async () => {
  const broken = join(root, 'broken');
  cpSync(model, broken, { recursive: true });
  const cfgPath = join(broken, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.chat_template = "{{ raise_exception('no chats here') }}";
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const folder = loadModelFolder(broken);
  await assert.rejects(
    extractTaskFeatures(folder, task, { split: 'train', pooling: 'last' }),
    /example [0-9a-f]+: the chat template failed to render the prompt \(.*no chats here/,
  );
});
