/**
 * The Qwen2-VL image processor against a reference written from transformers' image_processing_qwen2_vl.py with
 * Pillow and numpy (test/fixtures/data/make_qwen2_vl_processor.py): smart_resize sizes (Python's round-half-even
 * included), the resized, normalized and flattened patches with their grids; processor file detection; and the
 * bad inputs (an image larger than max_pixels allows, an aspect ratio over 200, contradictory limits).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  parseImageProcessor,
  parseQwen2VlProcessorConfig,
  qwen2VlPatchesOf,
  smartResize,
} from '../../src/data/images/qwen2-vl-processor.ts';
import { maxRelDiff } from '../engine/helpers.ts';

interface Fixture {
  processor: Record<string, unknown>;
  resizes: {
    height: number;
    width: number;
    factor: number;
    min_pixels: number;
    max_pixels: number;
    out: number[];
  }[];
  images: {
    width: number;
    height: number;
    hex: string;
    grid: number[];
    resized: number[];
    patches_hex: string;
  }[];
}

const fixture = JSON.parse(readFileSync('test/fixtures/data/qwen2-vl-processor.json', 'utf8')) as Fixture;

function floatsOf(hex: string): Float32Array {
  const bytes = Buffer.from(hex, 'hex');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

describe('Qwen2-VL image processor (vs a Pillow/numpy reference of HF Qwen2VLImageProcessor)', () => {
  test('smart_resize gives the reference sizes, round-half-even included', () => {
    for (const r of fixture.resizes)
      assert.deepEqual(
        smartResize(r.height, r.width, r.factor, r.min_pixels, r.max_pixels),
        r.out,
        `${r.height}x${r.width} factor ${r.factor} [${r.min_pixels}, ${r.max_pixels}]`,
      );
  });

  test('patches [t·h·w, C·T·P·P] and grids equal the reference', () => {
    const config = parseQwen2VlProcessorConfig(fixture.processor, 'fixture');
    for (const img of fixture.images) {
      const data = new Uint8Array(Buffer.from(img.hex, 'hex'));
      const out = qwen2VlPatchesOf({ data, width: img.width, height: img.height, channels: 3 }, config);
      assert.deepEqual([...out.grid], img.grid);
      const ref = floatsOf(img.patches_hex);
      assert.equal(out.patches.length, ref.length);
      const err = maxRelDiff(out.patches, ref);
      assert.ok(err < 1e-6, `${img.width}x${img.height}: relative error ${err}`);
    }
  });

  test('preprocessor_config.json: Qwen2-VL files are told from fixed-size ones; both limit spellings', () => {
    assert.equal(parseImageProcessor({ image_processor_type: 'Qwen2VLImageProcessor' }).kind, 'qwen2-vl');
    const sized = parseImageProcessor({
      image_processor_type: 'Qwen2VLImageProcessorFast',
      size: { shortest_edge: 3136, longest_edge: 12845056 },
    });
    assert.equal(sized.kind, 'qwen2-vl');
    if (sized.kind === 'qwen2-vl')
      assert.deepEqual([sized.config.minPixels, sized.config.maxPixels], [3136, 12845056]);
    const flat = parseImageProcessor({ min_pixels: 100, max_pixels: 1000, patch_size: 4 });
    assert.equal(flat.kind, 'qwen2-vl');
    const vit = parseImageProcessor({
      image_processor_type: 'ViTImageProcessor',
      size: { height: 32, width: 32 },
    });
    assert.equal(vit.kind, 'fixed');
  });

  test('bad input: an image larger than max_pixels allows after resize, extreme aspect ratios, bad limits', () => {
    // 9x300 at factor 8: the short side stays one 8-pixel row, so 8x64 = 512 pixels exceed max_pixels 128.
    assert.throws(
      () => smartResize(9, 300, 8, 64, 128, 'photo.png'),
      (e: Error) => /^photo\.png: image 300x9 is larger than max_pixels 128 allows/.test(e.message),
    );
    assert.throws(
      () => smartResize(10, 2500, 28, 3136, 12845056, 'strip.png'),
      (e: Error) => /^strip\.png: .*aspect ratio 250\.0.*at most 200/.test(e.message),
    );
    assert.throws(
      () => parseQwen2VlProcessorConfig({ min_pixels: 5000, max_pixels: 4000 }, 'preprocessor_config.json'),
      (e: Error) =>
        /^preprocessor_config\.json: min_pixels: 5000 is larger than max_pixels 4000/.test(e.message),
    );
    assert.throws(
      () => parseQwen2VlProcessorConfig({ min_pixels: 'many' }, 'p.json'),
      (e: Error) => /^p\.json: min_pixels: /.test(e.message),
    );
  });
});
