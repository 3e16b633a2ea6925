/**
 * Exported vision encoders give the pooled features `tlab metrics features --pooling pooled` computes with this
 * project's engine, for every image of a task at once (a batch size the export never saw): a ViT encoder through
 * transformers.js (AutoModel → ViTModel, no network) and CLIP's vision tower through onnxruntime-node
 * (transformers.js has no clip_vision_model class).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AutoModel, env, Tensor } from '@huggingface/transformers';
import ort from 'onnxruntime-node';
import { loadPreprocessorConfig, preprocessImageBytes } from '../../src/data/images/preprocess.ts';
import { loadTaskSplit } from '../../src/data/read.ts';
import { readSafetensors } from '../../src/engine/io/safetensors.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { loadModelFolder, saveModelFolder } from '../../src/models/hf/model-folder.ts';
import { fixture } from './export-helpers.ts';
import { assertClose } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-export-vision-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
const task = join(root, 'tasks', 'shapes');

const PREPROCESSOR = {
  image_processor_type: 'ViTImageProcessor',
  do_resize: true,
  size: { height: 16, width: 16 },
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
};

before(() => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  shapes:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 12 }, modality: both, rows: 1, cols: 1, questions_per_image: 1, cell_size: 16 }\n',
  );
  const r = tlab('data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  env.allowRemoteModels = false;
  env.useFSCache = false;
  env.localModelPath = root;
});

/** `tlab metrics features` pooled features, then `tlab export`; returns the features and the pixels they came from. */
async function featuresAndExport(
  model: string,
  name: string,
): Promise<{ features: HostTensor; pixels: Float32Array }> {
  const out = join(root, `${name}-features`);
  const r = tlab('metrics', 'features', model, task, '--split', 'train', '--pooling', 'pooled', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const features = [...readSafetensors(join(out, 'features.safetensors')).values()][0];
  const e = tlab('export', model, '--out', join(root, name));
  assert.equal(e.status, 0, e.stderr);
  const processor = loadPreprocessorConfig(join(model, 'preprocessor_config.json'));
  const examples = await loadTaskSplit(task, 'train');
  const chunks: Float32Array[] = [];
  for (const ex of examples) {
    const part = ex.messages.flatMap((m) => m.content).find((p) => p.type === 'image');
    if (part?.type !== 'image') throw new Error(`${ex.uid} has no image`);
    chunks.push((await preprocessImageBytes(readFileSync(join(task, part.image)), processor)).data);
  }
  const pixels = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    pixels.set(c, at);
    at += c.length;
  }
  return { features, pixels };
}

test('a ViT encoder exported and run by transformers.js gives the pooled features of tlab metrics features', async () => {
  // The fixture is a ViTForImageClassification: saved again as its encoder (ViTModel) with a processor.
  const encoder = loadModelFolder(fixture('vit_cls'), { kind: 'vision-encoder' });
  const dir = join(root, 'vit-src');
  saveModelFolder(dir, encoder, encoder.weights);
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(PREPROCESSOR));
  const { features, pixels } = await featuresAndExport(dir, 'vit');
  const n = features.shape[0];
  const model = await AutoModel.from_pretrained('vit', { dtype: 'fp32' });
  try {
    const out = await model({ pixel_values: new Tensor('float32', pixels, [n, 3, 16, 16]) });
    const pooled = out.pooler_output as Tensor;
    assertClose(
      { dtype: 'float32', shape: pooled.dims, data: pooled.data as Float32Array },
      features,
      'ViT pooled',
    );
  } finally {
    await model.dispose();
  }
});

test("CLIP's vision tower exported and run by onnxruntime gives the pooled features of tlab metrics features", async () => {
  const dir = join(root, 'clip-src');
  cpSync(fixture('clip_vision'), dir, { recursive: true });
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(PREPROCESSOR));
  const { features, pixels } = await featuresAndExport(dir, 'clip');
  const session = await ort.InferenceSession.create(join(root, 'clip', 'onnx', 'model.onnx'));
  try {
    const out = await session.run({
      pixel_values: new ort.Tensor('float32', pixels, [features.shape[0], 3, 16, 16]),
    });
    const pooled = out.pooler_output;
    assertClose(
      { dtype: 'float32', shape: [...pooled.dims], data: pooled.data as Float32Array },
      features,
      'CLIP pooled',
    );
  } finally {
    await session.release();
  }
});
