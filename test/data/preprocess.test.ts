import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodePng } from '../../src/data/images/codec.ts';
import {
  type ChwTensor,
  parsePreprocessorConfig,
  patchify,
  preprocessImageBytes,
  preprocessRgb,
  resizeTarget,
} from '../../src/data/images/preprocess.ts';
import { type ResampleCode, resizeImage } from '../../src/data/images/resample.ts';

interface Reference {
  input: { width: number; height: number; hex: string };
  resizes: { resample: ResampleCode; width: number; height: number; hex: string }[];
  pipeline: { config: Record<string, unknown>; resized: [number, number]; pixel_values: number[] };
}

// Made by test/fixtures/data/make_preprocess_fixture.py with Pillow 9.4 and numpy.
const ref = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/data/preprocess-reference.json'), 'utf8'),
) as Reference;
const input = {
  data: new Uint8Array(Buffer.from(ref.input.hex, 'hex')),
  width: ref.input.width,
  height: ref.input.height,
  channels: 3,
};

test('resize matches Pillow exactly for every filter, shrinking and enlarging', () => {
  for (const r of ref.resizes) {
    const out = resizeImage(input, r.width, r.height, r.resample);
    const expected = new Uint8Array(Buffer.from(r.hex, 'hex'));
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(out.data[i] - expected[i]));
    assert.equal(worst, 0, `resample ${r.resample} to ${r.width}x${r.height}: max difference ${worst}`);
  }
});

test('CLIP-style pipeline (shortest edge, bicubic, centre crop, rescale, normalize) matches the reference', async () => {
  const config = parsePreprocessorConfig(ref.pipeline.config);
  assert.deepEqual(resizeTarget(input.width, input.height, config.resize as never), ref.pipeline.resized);
  const check = (t: ChwTensor): void => {
    assert.deepEqual([t.channels, t.height, t.width], [3, 12, 12]);
    for (let i = 0; i < t.data.length; i++)
      assert.ok(
        Math.abs(t.data[i] - ref.pipeline.pixel_values[i]) <= 1e-6,
        `value ${i}: ${t.data[i]} vs ${ref.pipeline.pixel_values[i]}`,
      );
  };
  check(preprocessRgb(input, config));
  check(await preprocessImageBytes(await encodePng(input), config)); // through PNG bytes: lossless
});

test('patchify lays out [num_patches, C*P*P] in row-major patch order, channel-major inside a patch', () => {
  const t: ChwTensor = {
    data: Float32Array.from({ length: 2 * 4 * 6 }, (_, i) => i),
    channels: 2,
    height: 4,
    width: 6,
  };
  const p = patchify(t, 2);
  assert.equal(p.numPatches, 6);
  assert.equal(p.patchDim, 8);
  // Patch (row 0, col 1): channel 0 rows 0-1 cols 2-3, then channel 1.
  assert.deepEqual([...p.data.subarray(8, 16)], [2, 3, 8, 9, 26, 27, 32, 33]);
  assert.throws(() => patchify(t, 4), /not divisible/);
});

test('preprocessor config errors name the file and the field', () => {
  assert.throws(
    () =>
      parsePreprocessorConfig(
        { size: { min_pixels: 3136, max_pixels: 12845056 } },
        'preprocessor_config.json',
      ),
    /^TlabError: preprocessor_config\.json: size\.min_pixels: dynamic-resolution processors/,
  );
  assert.throws(
    () => parsePreprocessorConfig({ size: 224, resample: 7 }, 'p.json'),
    /^TlabError: p\.json: resample: /,
  );
  assert.throws(
    () => parsePreprocessorConfig({ do_normalize: true, image_mean: [0.5, 0.5] }, 'p.json'),
    /p\.json: image_mean/,
  );
  assert.deepEqual(parsePreprocessorConfig({ image_processor_type: 'ViTImageProcessor', size: 224 }).resize, {
    height: 224,
    width: 224,
  });
  assert.deepEqual(
    parsePreprocessorConfig({ image_processor_type: 'CLIPImageProcessor', size: 224 }).resize,
    { shortestEdge: 224 },
  );
});
