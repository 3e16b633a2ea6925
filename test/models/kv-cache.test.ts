/**
 * Incremental decoding through the static KV cache: a prefill chunk then one-token steps give the logits of the
 * full forward pass, for Llama (GQA, llama3 RoPE: positions come from the cache), Qwen2 (one KV head) and a LLaVA
 * whose prefill carries the image and whose decode steps are text only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import type { DecoderLm, Vlm } from '../../src/models/types.ts';
import { KvCache } from '../../src/nn/kv-cache.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import { maxRelDiff } from '../engine/helpers.ts';
import { expected, fixtureDir, int64, runModel } from './helpers.ts';

async function compileStep(
  model: DecoderLm | Vlm,
  weights: ReadonlyMap<string, HostTensor>,
  t: number,
  maxLength: number,
  pixels: number[] | null,
) {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const cache = new KvCache(graph, {
    layers: model.numLayers,
    batch: 1,
    kvHeads: model.numKvHeads,
    headDim: model.headDim,
    maxLength,
    newTokens: t,
  });
  const ids = graph.input('ids', 'int64', [1, t]);
  const pixelValues = pixels ? graph.input('pixel_values', 'float32', pixels) : null;
  const out = model.forward(pb, { ids, cache, ...(pixelValues ? { pixelValues } : {}) });
  const bind = new Map([...pb.specs.keys()].map((n) => [n, weights.get(n)!]));
  return Program.compile(graph, { outputs: { logits: out.logits, ...cache.outputs() }, bind });
}

async function checkDecoding(name: string, tokens: number[], prefill: number, pixels: HostTensor | null) {
  const folder = loadModelFolder(fixtureDir(name));
  const model = folder.model as DecoderLm | Vlm;
  const n = tokens.length;
  const s = n + 2;
  const v = model.vocabSize;
  const ids = int64([1, n], tokens);
  const full = await runModel(folder, folder.weights, {
    input_ids: ids,
    ...(pixels ? { pixel_values: pixels } : {}),
  });
  const ref = full.logits.data as Float32Array;
  const first = await compileStep(model, folder.weights, prefill, s, pixels ? [...pixels.shape] : null);
  const step = await compileStep(model, folder.weights, 1, s, null);
  let cache: Record<string, HostTensor> = {};
  for (let l = 0; l < model.numLayers; l++)
    for (const kind of ['key', 'value'])
      cache[`past.${l}.${kind}`] = {
        dtype: 'float32',
        shape: [1, model.numKvHeads, s, model.headDim],
        data: new Float32Array(model.numKvHeads * s * model.headDim),
      };
  const mask = (k: number) =>
    int64(
      [1, s],
      Array.from({ length: s }, (_, i) => (i < k ? 1 : 0)),
    );
  const keep = (out: Record<string, HostTensor>) => {
    cache = {};
    for (const [k, t] of Object.entries(out))
      if (k.startsWith('present.')) cache[k.replace('present.', 'past.')] = t;
  };
  const r = await first.run({
    ids: int64([1, prefill], tokens.slice(0, prefill)),
    cache_position: int64(
      [prefill],
      Array.from({ length: prefill }, (_, i) => i),
    ),
    cache_mask: mask(prefill),
    ...(pixels ? { pixel_values: pixels } : {}),
    ...cache,
  });
  const err0 = maxRelDiff(r.logits.data as Float32Array, ref.slice(0, prefill * v));
  assert.ok(err0 < 1e-5, `${name} prefill logits: ${err0}`);
  keep(r);
  for (let p = prefill; p < n; p++) {
    const d = await step.run({
      ids: int64([1, 1], [tokens[p]]),
      cache_position: int64([1], [p]),
      cache_mask: mask(p + 1),
      ...cache,
    });
    const err = maxRelDiff(d.logits.data as Float32Array, ref.slice(p * v, (p + 1) * v));
    assert.ok(err < 1e-5, `${name} decode step at position ${p}: ${err}`);
    keep(d);
  }
  await first.release();
  await step.release();
}

test('Llama (GQA, llama3 RoPE): prefill + decode steps match the full forward pass', async () => {
  await checkDecoding('llama_lm', [5, 17, 33, 2, 61, 40, 9, 11, 70], 4, null);
});

test('Qwen2 (one KV head, q/k/v biases): prefill + decode steps match the full forward pass', async () => {
  await checkDecoding('qwen2_tied_f16', [3, 14, 15, 9, 26, 53, 58], 3, null);
});

test('LLaVA: the image goes in with the prefill, text-only decode steps continue from the cache', async () => {
  const ref = expected('llava_llama_clip_mlp');
  const pixels = ref.get('pixel_values')!;
  const one: HostTensor = {
    dtype: 'float32',
    shape: [1, ...pixels.shape.slice(1)],
    data: (pixels.data as Float32Array).slice(0, pixels.data.length / 2),
  };
  const tokens = [1, 7, ...new Array(16).fill(79), 12, 30, 44, 8];
  await checkDecoding('llava_llama_clip_mlp', tokens, 19, one);
});
