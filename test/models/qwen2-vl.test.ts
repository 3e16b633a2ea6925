/**
 * Qwen2-VL parity with a PyTorch reference written from Hugging Face's modeling_qwen2_vl.py
 * (test/fixtures/models/make_qwen2_vl.py): logits, every text hidden state, the merged image features and every
 * vision block's output within 1e-4 relative, for one image, two rows holding three images of different sizes, and
 * text only; both checkpoint layouts (top-level text fields with visual./model. keys, and text_config with
 * model.visual./model.language_model. keys and tied embeddings) load; the fixed-size pixel path equals the
 * processor-patch path; greedy generation with the KV cache equals the reference's full re-forward.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readSafetensors } from '../../src/engine/io/safetensors.ts';
import { Graph, type Value } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { ForwardRunner } from '../../src/eval/forward.ts';
import { Generator } from '../../src/eval/generate.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import type { Qwen2VlConfig } from '../../src/models/qwen2-vl.ts';
import { qwen2VisionDims, qwen2VisionTower } from '../../src/models/qwen2-vl-vision.ts';
import type { ImageGrid, PatchImage, Vlm } from '../../src/models/types.ts';
import { expandImagePlaceholders } from '../../src/models/vlm.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { maxRelDiff } from '../engine/helpers.ts';
import { assertClose, FIXTURES, int64, onesMask } from './helpers.ts';

const CASES = ['one_image', 'two_images', 'text_only'] as const;

function expectedOf(folder: string, name: string): Map<string, HostTensor> {
  return readSafetensors(join(FIXTURES, folder, `expected_${name}.safetensors`));
}

function gridsOf(ref: Map<string, HostTensor>): ImageGrid[] {
  const g = ref.get('image_grid_thw');
  if (!g) return [];
  const v = Array.from(g.data as BigInt64Array, Number);
  return Array.from({ length: g.shape[0] }, (_, i) => [v[3 * i], v[3 * i + 1], v[3 * i + 2]] as const);
}

async function run(
  build: (graph: Graph, pb: ParamBuilder) => Record<string, Value>,
  weights: ReadonlyMap<string, HostTensor>,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const outputs = build(graph, pb);
  const bind = new Map([...pb.specs.keys()].map((k) => [k, weights.get(k)!]));
  const program = await Program.compile(graph, { outputs, bind });
  try {
    return await program.run(feeds);
  } finally {
    await program.release();
  }
}

/** The VLM's forward on the reference's inputs: logits, every hidden state, image features. */
async function forwardCase(
  vlm: Vlm,
  weights: ReadonlyMap<string, HostTensor>,
  ref: Map<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const ids = ref.get('ids')!;
  const pixels = ref.get('pixel_values');
  const grids = gridsOf(ref);
  const feeds: Record<string, HostTensor> = { ids, attention_mask: onesMask(ids) };
  if (pixels) feeds.pixel_values = pixels;
  return run(
    (graph, pb) => {
      const out = vlm.forward(pb, {
        ids: graph.input('ids', 'int64', ids.shape),
        attentionMask: graph.input('attention_mask', 'int64', ids.shape),
        pixelValues: pixels ? graph.input('pixel_values', 'float32', pixels.shape) : null,
        imageGrids: pixels ? grids : null,
      });
      const o: Record<string, Value> = { logits: out.logits };
      out.hiddenStates.forEach((h, i) => {
        o[`hidden.${i}`] = h;
      });
      if (out.imageFeatures) o.image_features = out.imageFeatures;
      return o;
    },
    weights,
    feeds,
  );
}

function compareAll(out: Record<string, HostTensor>, ref: Map<string, HostTensor>, what: string): number {
  let worst = 0;
  let compared = 0;
  for (const [key, value] of ref) {
    if (!/^(logits|hidden\.\d+|image_features)$/.test(key)) continue;
    assert.ok(out[key], `${what}: output ${key}`);
    worst = Math.max(worst, assertClose(out[key], value, `${what} ${key}`, 1e-4));
    compared++;
  }
  assert.ok(compared >= 4, `${what}: compared ${compared} tensors`);
  return worst;
}

describe('Qwen2-VL parity with the PyTorch reference (1e-4 relative)', () => {
  const folder = loadModelFolder(join(FIXTURES, 'qwen2_vl'));
  const vlm = folder.model as Vlm;
  const errors: Record<string, string> = {};

  test('the folder loads as a VLM with the hub layout', () => {
    assert.equal(folder.kind, 'vlm');
    assert.equal(vlm.modelType, 'qwen2_vl');
    assert.equal(vlm.imageTokenId, 120);
    assert.ok(folder.weights.has('visual.merger.mlp.2.weight'));
    assert.ok(folder.weights.has('model.layers.1.self_attn.q_proj.bias'));
    assert.ok(folder.weights.has('lm_head.weight'));
  });

  for (const name of CASES) {
    test(`${name}: logits, every hidden state and the image features`, async () => {
      const ref = expectedOf('qwen2_vl', name);
      const out = await forwardCase(vlm, folder.weights, ref);
      const hidden = [...ref.keys()].filter((k) => k.startsWith('hidden.')).length;
      assert.equal(hidden, vlm.numLayers + 1, 'every text hidden state is in the fixture');
      errors[name] = compareAll(out, ref, name).toExponential(2);
    });
  }

  test('every vision block output (patch embeddings, blocks) and the merger, for images of different sizes', async () => {
    const ref = expectedOf('qwen2_vl', 'two_images');
    const pixels = ref.get('pixel_values')!;
    const grids = gridsOf(ref);
    const dims = qwen2VisionDims((folder.config as Qwen2VlConfig).vision_config, 'vision_config');
    const out = await run(
      (graph, pb) => {
        const t = pb.scope('visual', () =>
          qwen2VisionTower(pb, dims, graph.input('pixel_values', 'float32', pixels.shape), grids),
        );
        const o: Record<string, Value> = { image_features: t.features };
        t.hiddenStates.forEach((h, i) => {
          o[`vision_hidden.${i}`] = h;
        });
        return o;
      },
      folder.weights,
      { pixel_values: pixels },
    );
    let n = 0;
    for (const [key, value] of ref) {
      if (!key.startsWith('vision_hidden.') && key !== 'image_features') continue;
      const got = out[key];
      const flat = { ...got, shape: value.shape };
      assertClose(flat, value, `vision ${key}`, 1e-4);
      n++;
    }
    assert.equal(n, dims.depth + 2);
  });

  test('the nested layout (text_config, model.visual./model.language_model. keys, tied embeddings)', async () => {
    const nested = loadModelFolder(join(FIXTURES, 'qwen2_vl_nested'));
    assert.equal(nested.kind, 'vlm');
    assert.ok(!nested.weights.has('lm_head.weight'), 'tied: no lm_head');
    assert.ok(nested.weights.has('visual.blocks.0.attn.qkv.weight'));
    assert.ok(nested.weights.has('model.embed_tokens.weight'));
    const ref = expectedOf('qwen2_vl_nested', 'one_image');
    errors.nested = compareAll(
      await forwardCase(nested.model as Vlm, nested.weights, ref),
      ref,
      'nested',
    ).toExponential(2);
  });

  test('square pixels on the fixed-size path give the same logits as their processor patches', async () => {
    const dims = qwen2VisionDims((folder.config as Qwen2VlConfig).vision_config, 'vision_config');
    const s = dims.imageSize;
    const c = dims.channels;
    const pixels = new Float32Array(c * s * s);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i * 0.37) * 1.5;
    const patches = processorPatches(pixels, c, s, dims.patch, dims.merge, dims.temporal);
    const patchImage: PatchImage = { patches, grid: [1, s / dims.patch, s / dims.patch] };
    const tokens = vlm.imageInputs.tokens(patchImage, 'image');
    assert.equal(tokens, vlm.imageTokens);
    assert.equal(vlm.imageInputs.tokens(pixels, 'image'), tokens);
    const ids = [4, 118, ...new Array(tokens).fill(120), 119, 9, 33];
    const logitsOf = async (image: Float32Array | PatchImage) => {
      const rows = [[image]];
      const feeds: Record<string, HostTensor> = {
        ids: int64([1, ids.length], ids),
        ...vlm.imageInputs.feeds(rows),
      };
      const out = await run(
        (graph, pb) => ({
          logits: vlm.forward(pb, {
            ids: graph.input('ids', 'int64', [1, ids.length]),
            ...vlm.imageInputs.declare(graph, rows),
          }).logits,
        }),
        folder.weights,
        feeds,
      );
      return out.logits;
    };
    assertClose(await logitsOf(pixels), await logitsOf(patchImage), 'fixed path vs patches', 1e-5);
  });

  test('report', () => {
    console.log(`qwen2_vl max relative error per case: ${JSON.stringify(errors)}`);
  });
});

/** Per row of the reference ids: the prompt with each placeholder run collapsed to one token, and its images. */
function promptsOf(
  ref: Map<string, HostTensor>,
  imageToken: number,
): { ids: number[]; images: PatchImage[] }[] {
  const ids = ref.get('ids')!;
  const [b, t] = ids.shape;
  const grids = gridsOf(ref);
  const pixels = ref.get('pixel_values');
  const dim = pixels ? pixels.shape[1] : 0;
  let image = 0;
  let offset = 0;
  return Array.from({ length: b }, (_, r) => {
    const row = Array.from((ids.data as BigInt64Array).slice(r * t, (r + 1) * t), Number);
    const collapsed = row.filter((id, i) => id !== imageToken || row[i - 1] !== imageToken);
    const images: PatchImage[] = [];
    for (let k = 0; k < collapsed.filter((id) => id === imageToken).length; k++, image++) {
      const g = grids[image];
      const n = g[0] * g[1] * g[2] * dim;
      images.push({ patches: (pixels!.data as Float32Array).slice(offset, offset + n), grid: g });
      offset += n;
    }
    return { ids: collapsed, images };
  });
}

describe('Qwen2-VL generation and batching', () => {
  const folder = loadModelFolder(join(FIXTURES, 'qwen2_vl'));
  const vlm = folder.model as Vlm;
  const tokenizer = CharTokenizer.build({ characters: 'abcdefghijklmnopqrstuvwxyz0123456789 .,!?' });

  test('greedy tokens with the KV cache = full re-forward = the reference, alone and batched', async () => {
    const generator = new Generator(vlm, folder.weights, tokenizer);
    try {
      for (const name of CASES) {
        const ref = expectedOf('qwen2_vl', name);
        const greedy = ref.get('greedy')!;
        const steps = greedy.shape[1];
        const want = Array.from({ length: greedy.shape[0] }, (_, r) =>
          Array.from((greedy.data as BigInt64Array).slice(r * steps, (r + 1) * steps), Number),
        );
        const prompts = promptsOf(ref, vlm.imageTokenId);
        const options = { maxNewTokens: steps, stopTokenIds: [] };
        const cached = await generator.generate(prompts, options);
        const uncached = await generator.generate(prompts, { ...options, useCache: false });
        const alone = await Promise.all(prompts.map((p) => generator.generate([p], options)));
        prompts.forEach((_, r) => {
          assert.deepEqual(cached[r].tokenIds, want[r], `${name} row ${r}: cached vs reference`);
          assert.deepEqual(uncached[r].tokenIds, want[r], `${name} row ${r}: re-forward vs reference`);
          assert.deepEqual(alone[r][0].tokenIds, want[r], `${name} row ${r}: alone vs batched`);
        });
      }
    } finally {
      await generator.release();
    }
  });

  test('the forward runner (right-padded, bucketed) gives the reference logits', async () => {
    const ref = expectedOf('qwen2_vl', 'two_images');
    const prompts = promptsOf(ref, vlm.imageTokenId);
    const ids = prompts.map((p) =>
      expandImagePlaceholders(
        p.ids,
        vlm.imageTokenId,
        p.images.map((im) => vlm.imageInputs.tokens(im, 'image')),
      ),
    );
    const runner = new ForwardRunner(vlm, folder.weights);
    try {
      const out = await runner.run({ ids, images: prompts.map((p) => p.images) }, { logits: true });
      const [b, t, v] = ref.get('logits')!.shape;
      const got = out.logits!.data as Float32Array;
      const want = ref.get('logits')!.data as Float32Array;
      for (let r = 0; r < b; r++) {
        const err = maxRelDiff(
          got.slice(r * out.length * v, r * out.length * v + t * v),
          want.slice(r * t * v, (r + 1) * t * v),
        );
        assert.ok(err < 1e-4, `row ${r}: relative error ${err}`);
      }
    } finally {
      await runner.release();
    }
  });

  test('bad input: an image count that does not match the placeholders is one clear error', async () => {
    const ref = expectedOf('qwen2_vl', 'two_images');
    const [first] = promptsOf(ref, vlm.imageTokenId);
    const generator = new Generator(vlm, folder.weights, tokenizer);
    try {
      await assert.rejects(
        generator.generate([{ ids: first.ids, images: first.images.slice(0, 1) }], { maxNewTokens: 1 }),
        (e: Error) => /^prompt 0: 1 image\(s\) for 2 image placeholder token\(s\) \(id 120\)/.test(e.message),
      );
    } finally {
      await generator.release();
    }
    const runner = new ForwardRunner(vlm, folder.weights);
    try {
      const ids = expandImagePlaceholders(first.ids, vlm.imageTokenId, [6, 2]);
      await assert.rejects(
        runner.run({ ids: [ids.slice(0, -3)], images: [first.images.slice(0, 1)] }, { logits: true }),
        (e: Error) => /^forward: row 0 has 1 image\(s\) filling 6 placeholder tokens/.test(e.message),
      );
    } finally {
      await runner.release();
    }
  });
});

/** HF Qwen2VLImageProcessor's flattening of one still image [C, S, S] (repeated over the temporal patch). */
function processorPatches(
  chw: Float32Array,
  c: number,
  s: number,
  p: number,
  m: number,
  temporal: number,
): Float32Array {
  const g = s / p;
  const dim = c * temporal * p * p;
  const out = new Float32Array(g * g * dim);
  let k = 0;
  for (let bh = 0; bh < g / m; bh++)
    for (let bw = 0; bw < g / m; bw++)
      for (let i = 0; i < m; i++)
        for (let j = 0; j < m; j++, k++)
          for (let ch = 0; ch < c; ch++)
            for (let t = 0; t < temporal; t++)
              for (let y = 0; y < p; y++)
                for (let x = 0; x < p; x++) {
                  const row = (bh * m + i) * p + y;
                  const col = (bw * m + j) * p + x;
                  out[k * dim + ((ch * temporal + t) * p + y) * p + x] = chw[ch * s * s + row * s + col];
                }
  return out;
}
