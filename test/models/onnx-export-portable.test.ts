/**
 * The portable export read by onnxruntime-node from disk: decoder logits equal the PyTorch fixtures
 * (test/fixtures/models/make_model_fixtures.py: Hugging Face transformers' GPT2/Llama/Qwen2 models, left padding
 * included) with an empty cache; prefill + one token at a time through present → past gives the same logits as
 * one full pass; axes are named as optimum names them; vision encoders and the LLaVA parts (vision_encoder,
 * embed_tokens, decoder_model_merged) equal their fixtures for batch sizes the export never saw; external data
 * is written and declared for transformers.js.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import ort from 'onnxruntime-node';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { loadModelFolder, type ModelFolder } from '../../src/models/hf/model-folder.ts';
import { exportPortableFolder } from '../../src/models/onnx-export-folder.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { fixture } from './export-helpers.ts';
import { assertClose, expected } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tlab-portable-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Feeds = Record<string, ort.Tensor>;

function exported(name: string, folder: ModelFolder, file = 'model'): string {
  const dir = join(tmp, name);
  if (!existsSync(dir)) exportPortableFolder(dir, folder);
  return join(dir, 'onnx', `${file}.onnx`);
}

const i64 = (data: ArrayLike<number | bigint>, dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims);
const host = (t: ort.Tensor): HostTensor => ({
  dtype: 'float32',
  shape: [...t.dims],
  data: t.data as Float32Array,
});

/** Position ids as transformers.js makes them: a running count of real tokens, 1 at padding. */
function positionsOf(mask: BigInt64Array, b: number, t: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < b; r++) {
    let c = 0;
    for (let i = 0; i < t; i++) out.push(mask[r * t + i] ? c++ : 1);
  }
  return out;
}

function emptyPast(m: DecoderLm, b: number): Feeds {
  const feeds: Feeds = {};
  for (let i = 0; i < m.numLayers; i++)
    for (const kind of ['key', 'value'])
      feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [
        b,
        m.numKvHeads,
        0,
        m.headDim,
      ]);
  return feeds;
}

/** Logits of rows/positions whose mask is 1 (padded positions are never read). */
function realLogits(logits: Float32Array, mask: BigInt64Array, v: number): HostTensor {
  const rows: number[] = [];
  mask.forEach((m, i) => {
    if (m) rows.push(...logits.subarray(i * v, (i + 1) * v));
  });
  return { dtype: 'float32', shape: [rows.length], data: Float32Array.from(rows) };
}

for (const name of ['gpt2_lm', 'llama_lm', 'qwen2_untied', 'llama_tied_headdim', 'qwen2_tied_f16']) {
  test(`${name}: the exported decoder gives the PyTorch logits, at once and token by token through the cache`, async () => {
    const folder = loadModelFolder(fixture(name));
    const m = folder.model as DecoderLm;
    const ref = expected(name);
    const ids = ref.get('ids')!;
    const [b, t] = ids.shape;
    const mask =
      (ref.get('attention_mask')?.data as BigInt64Array | undefined) ?? new BigInt64Array(b * t).fill(1n);
    const session = await ort.InferenceSession.create(exported(name, folder));
    try {
      const v = m.vocabSize;
      const full = await session.run({
        input_ids: i64(ids.data as BigInt64Array, [b, t]),
        attention_mask: i64(mask, [b, t]),
        position_ids: i64(positionsOf(mask, b, t), [b, t]),
        ...emptyPast(m, b),
      });
      const reference = realLogits(ref.get('logits')!.data as Float32Array, mask, v);
      assertClose(realLogits(full.logits.data as Float32Array, mask, v), reference, `${name} logits`);
      assert.deepEqual(full['present.0.key'].dims, [b, m.numKvHeads, t, m.headDim]);

      // A prefill of `split` tokens, then one token per run with the previous step's present as past.
      const split = Math.max(1, t - 4);
      const positions = positionsOf(mask, b, t);
      const column = (a: ArrayLike<number | bigint>, from: number, to: number) =>
        Array.from({ length: b }, (_, r) => Array.from(a).slice(r * t + from, r * t + to)).flat();
      const steps = new Float32Array(b * t * v);
      let past = emptyPast(m, b);
      for (let at = 0; at < t; at = at === 0 ? split : at + 1) {
        const end = at === 0 ? split : at + 1;
        const out = await session.run({
          input_ids: i64(column(ids.data as BigInt64Array, at, end), [b, end - at]),
          attention_mask: i64(column(mask, 0, end), [b, end]),
          position_ids: i64(column(positions, at, end), [b, end - at]),
          ...past,
        });
        const data = out.logits.data as Float32Array;
        for (let r = 0; r < b; r++)
          steps.set(data.subarray(r * (end - at) * v, (r + 1) * (end - at) * v), (r * t + at) * v);
        past = {};
        for (let i = 0; i < m.numLayers; i++)
          for (const kind of ['key', 'value'])
            past[`past_key_values.${i}.${kind}`] = out[`present.${i}.${kind}`];
      }
      assertClose(realLogits(steps, mask, v), reference, `${name} logits through the cache`);
    } finally {
      await session.release();
    }
  });
}

test('decoder axes carry optimum names; heads and head size are static for the empty first-step cache', async () => {
  const folder = loadModelFolder(fixture('llama_lm'));
  const m = folder.model as DecoderLm;
  const session = await ort.InferenceSession.create(exported('llama_lm', folder));
  try {
    const shapeOf = (list: readonly { name: string; isTensor: boolean }[], name: string) => {
      const meta = list.find((x) => x.name === name);
      assert.ok(meta?.isTensor, name);
      return (meta as unknown as { shape: readonly (number | string)[] }).shape;
    };
    assert.deepEqual(session.inputNames.slice(0, 3), ['input_ids', 'attention_mask', 'position_ids']);
    assert.deepEqual(shapeOf(session.inputMetadata, 'input_ids'), ['batch_size', 'sequence_length']);
    assert.deepEqual(shapeOf(session.inputMetadata, 'attention_mask'), [
      'batch_size',
      'past_sequence_length + sequence_length',
    ]);
    assert.deepEqual(shapeOf(session.inputMetadata, 'past_key_values.1.value'), [
      'batch_size',
      m.numKvHeads,
      'past_sequence_length',
      m.headDim,
    ]);
    assert.deepEqual(shapeOf(session.outputMetadata, 'logits'), [
      'batch_size',
      'sequence_length',
      m.vocabSize,
    ]);
    assert.deepEqual(shapeOf(session.outputMetadata, 'present.1.key'), [
      'batch_size',
      m.numKvHeads,
      'past_sequence_length + sequence_length',
      m.headDim,
    ]);
  } finally {
    await session.release();
  }
});

for (const [name, outputs] of [
  ['vit_cls', { logits: 'logits' }],
  ['clip_cls', { logits: 'logits' }],
  ['clip_vision', { pooler_output: 'pooled', last_hidden_state: 'last_hidden' }],
] as const) {
  test(`${name}: the exported vision model matches its fixture for batch sizes 2 and 1`, async () => {
    const folder = loadModelFolder(fixture(name));
    const ref = expected(name);
    const pixels = ref.get('pixel_values')!;
    const session = await ort.InferenceSession.create(exported(name, folder));
    try {
      const both = await session.run({
        pixel_values: new ort.Tensor('float32', pixels.data as Float32Array, pixels.shape),
      });
      const per = (pixels.data as Float32Array).length / 2;
      const second = await session.run({
        pixel_values: new ort.Tensor('float32', (pixels.data as Float32Array).slice(per), [
          1,
          ...pixels.shape.slice(1),
        ]),
      });
      for (const [out, key] of Object.entries(outputs)) {
        const r = ref.get(key)!;
        assertClose(host(both[out]), r, `${name} ${out}`);
        const n = (r.data as Float32Array).length / 2;
        assertClose(
          host(second[out]),
          { dtype: 'float32', shape: [1, ...r.shape.slice(1)], data: (r.data as Float32Array).slice(n) },
          `${name} ${out} (batch 1)`,
        );
      }
    } finally {
      await session.release();
    }
  });
}

for (const name of ['llava_llama_clip_mlp', 'llava_gpt2_vit_linear']) {
  test(`${name}: vision_encoder → embed_tokens → image features spliced at placeholders → decoder gives the fixture`, async () => {
    const folder = loadModelFolder(fixture(name));
    if (folder.kind !== 'vlm') throw new Error('not a VLM');
    const ref = expected(name);
    const dir = join(tmp, name);
    exportPortableFolder(dir, folder);
    const open = (f: string) => ort.InferenceSession.create(join(dir, 'onnx', `${f}.onnx`));
    const [vision, embed, decoder] = await Promise.all([
      open('vision_encoder'),
      open('embed_tokens'),
      open('decoder_model_merged'),
    ]);
    try {
      const pixels = ref.get('pixel_values')!;
      const features = (
        await vision.run({
          pixel_values: new ort.Tensor('float32', pixels.data as Float32Array, pixels.shape),
        })
      ).image_features;
      assertClose(host(features), ref.get('image_features')!, `${name} image_features`);
      const ids = ref.get('ids')!;
      const [b, t] = ids.shape;
      const embeds = (await embed.run({ input_ids: i64(ids.data as BigInt64Array, [b, t]) })).inputs_embeds;
      // transformers.js's default_merge_input_ids_with_features: the k-th placeholder of a row takes feature k.
      const d = embeds.dims[2];
      const n = features.dims[1];
      const e = Float32Array.from(embeds.data as Float32Array);
      const f = features.data as Float32Array;
      for (let r = 0; r < b; r++) {
        let k = 0;
        for (let i = 0; i < t; i++)
          if (Number((ids.data as BigInt64Array)[r * t + i]) === folder.model.imageTokenId)
            e.set(f.subarray((r * n + k++) * d, (r * n + k) * d), (r * t + i) * d);
        assert.equal(k, n, `row ${r} has one placeholder per feature`);
      }
      const mask = new BigInt64Array(b * t).fill(1n);
      const out = await decoder.run({
        inputs_embeds: new ort.Tensor('float32', e, [b, t, d]),
        attention_mask: i64(mask, [b, t]),
        position_ids: i64(positionsOf(mask, b, t), [b, t]),
        ...emptyPast(folder.model, b),
      });
      assertClose(host(out.logits), ref.get('logits')!, `${name} logits`);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      assert.equal(config.model_type, 'llava');
      assert.ok(existsSync(join(dir, 'generation_config.json')));
    } finally {
      await Promise.all([vision.release(), embed.release(), decoder.release()]);
    }
  });
}

test('large weights go to model.onnx_data, declared in config.json for transformers.js', async () => {
  const folder = loadModelFolder(fixture('gpt2_lm'));
  const dir = join(tmp, 'external');
  const result = exportPortableFolder(dir, folder, { externalDataThreshold: 0, variants: ['fp32', 'fp16'] });
  assert.deepEqual(
    result.onnx.map((o) => [o.file, o.data]),
    [
      ['onnx/model.onnx', 'onnx/model.onnx_data'],
      ['onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data'],
    ],
  );
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(config['transformers.js_config'], {
    use_external_data_format: { 'model.onnx': true, 'model_fp16.onnx': true },
  });
  assert.ok(readFileSync(join(dir, 'onnx', 'model.onnx')).byteLength < 100_000, 'the weights are not inline');
  const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
  const m = folder.model as DecoderLm;
  const out = await session.run({
    input_ids: i64([1, 2, 3], [1, 3]),
    attention_mask: i64([1, 1, 1], [1, 3]),
    position_ids: i64([0, 1, 2], [1, 3]),
    ...emptyPast(m, 1),
  });
  await session.release();
  assert.deepEqual(out.logits.dims, [1, 3, m.vocabSize]);
  assert.ok((out.logits.data as Float32Array).every(Number.isFinite));
});

test('a folder that has no portable export is refused before anything is written', () => {
  const folder = loadModelFolder(fixture('gpt2_seqcls'));
  const dir = join(tmp, 'refused');
  assert.throws(
    () => exportPortableFolder(dir, folder),
    /sequence classifier has no portable \(KV-cache\) export/,
  );
  assert.equal(existsSync(dir), false);
});

test('exporting again into a folder removes the ONNX files the new export does not write', () => {
  const folder = loadModelFolder(fixture('gpt2_lm'));
  const dir = join(tmp, 'again');
  exportPortableFolder(dir, folder, { variants: ['fp32', 'q4'] });
  assert.ok(existsSync(join(dir, 'onnx', 'model_q4.onnx')));
  exportPortableFolder(dir, folder, { variants: ['fp16'] });
  assert.deepEqual(readdirSync(join(dir, 'onnx')), ['model_fp16.onnx']);
});
