import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { ForwardRunner } from '../../src/eval/forward.ts';
import { extractTaskFeatures } from '../../src/eval/task-features.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-features-'));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
const task = join(root, 'tasks', 'shapes');

before(() => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  shapes:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 24 }, modality: both, rows: 1, cols: 1, questions_per_image: 1, cell_size: 16 }\n',
  );
  const r = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
});

describe('task features from model folders', () => {
  test('decoder: last-token features of the prompts, labels are the task classes', async () => {
    const folder = loadModelFolder('test/fixtures/models/gpt2_lm');
    const r = await extractTaskFeatures(folder, task, { split: 'train', pooling: 'last', batchSize: 5 });
    assert.equal(r.features.shape[0], 24);
    assert.equal(
      r.features.shape[1],
      folder.config.model_type === 'gpt2' ? (folder.model as { hiddenSize: number }).hiddenSize : 0,
    );
    assert.equal(r.labels.length, 24);
    assert.ok(r.labels.every((l) => l >= 0 && l < r.classes.length));
    assert.ok(r.truncated > 0, 'the fixture has 32 positions, shorter than the prompts');
    // Row 3 through the runner on its own (no batching, no padding) gives the same vector.
    const { loadTaskSplit } = await import('../../src/data/read.ts');
    const { taskPrompts } = await import('../../src/eval/task-features.ts');
    const examples = await loadTaskSplit(task, 'train');
    const { ids } = taskPrompts(folder.tokenizer!, examples.slice(3, 4), 32);
    const runner = new ForwardRunner(folder.model as never, folder.weights);
    const alone = await runner.features(ids, { pooling: ['last'], layers: [-1] });
    const row = [...alone.get('last')!.values()][0].data as Float32Array;
    const d = r.features.shape[1];
    const batched = (r.features.data as Float32Array).subarray(3 * d, 4 * d);
    for (let i = 0; i < d; i++) assert.ok(Math.abs(row[i] - batched[i]) < 1e-5, `element ${i}`);
    assert.ok((r.features.data as Float32Array).every(Number.isFinite));
  });

  test("vision encoder: the CLS token of the last (normalised) layer is ViT's pooled output", async () => {
    const dir = join(root, 'vit');
    cpSync('test/fixtures/models/vit_cls', dir, { recursive: true });
    writeFileSync(
      join(dir, 'preprocessor_config.json'),
      JSON.stringify({
        image_processor_type: 'ViTImageProcessor',
        do_resize: true,
        size: { height: 16, width: 16 },
        do_normalize: true,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.5, 0.5, 0.5],
      }),
    );
    const folder = loadModelFolder(dir);
    const pooled = await extractTaskFeatures(folder, task, {
      split: 'train',
      pooling: 'pooled',
      batchSize: 7,
    });
    const cls = await extractTaskFeatures(folder, task, { split: 'train', pooling: 'cls', batchSize: 24 });
    assert.deepEqual(pooled.features.shape, [24, 32]);
    const a = pooled.features.data as Float32Array;
    const b = cls.features.data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `element ${i}`);
    await assert.rejects(
      extractTaskFeatures(folder, task, { split: 'train', pooling: 'last' }),
      /pooling 'last' is for text/,
    );
  });

  test('CLI: features then LogME; an unknown pooling is one clear line', () => {
    const out = join(root, 'feats');
    const r = tlab([
      'metrics',
      'features',
      'test/fixtures/models/gpt2_lm',
      task,
      '--out',
      out,
      '--pooling',
      'mean',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).n, 24);
    const s = tlab([
      'metrics',
      'score',
      '--features',
      join(out, 'features.safetensors'),
      '--labels',
      join(out, 'labels.npy'),
      '--metric',
      'logme',
      '--json',
    ]);
    assert.equal(s.status, 0, s.stderr);
    const score = JSON.parse(s.stdout);
    assert.equal(score.n, 24);
    assert.ok(Number.isFinite(score.score));
    const bad = tlab([
      'metrics',
      'features',
      'test/fixtures/models/gpt2_lm',
      task,
      '--out',
      out,
      '--pooling',
      'sum',
    ]);
    assert.equal(bad.status, 1);
    assert.match(
      bad.stderr.split('\n')[0],
      /^error: --pooling: 'sum' is not one of last, mean, cls, pooled$/,
    );
  });
});
