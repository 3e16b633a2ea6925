/**
 * VLM inference with images: the forward runner against the PyTorch reference logits of a LLaVA fixture
 * (test/fixtures/models/make_model_fixtures.py), several images per row in placeholder order, generation with
 * images (KV cache = full re-forward, batch-invariant, text-only rows unaffected), per-prompt seeds, and
 * log-likelihood with images against the log-softmax of the full logits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { ForwardRunner } from '../../src/eval/forward.ts';
import { Generator, type PromptInput } from '../../src/eval/generate.ts';
import { loglikelihoodTokens } from '../../src/eval/loglik.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import type { Vlm } from '../../src/models/types.ts';
import { expandImagePlaceholders, spliceImageFeatures } from '../../src/models/vlm.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { maxRelDiff, randn } from '../engine/helpers.ts';
import { expected, fixtureDir } from '../models/helpers.ts';
import { tokenizer as charTokenizer, tinyModel } from './helpers.ts';

const FIXTURE = 'llava_llama_clip_mlp';
const folder = loadModelFolder(fixtureDir(FIXTURE));
const vlm = folder.model as Vlm;
const ref = expected(FIXTURE);
const imageSize = 3 * vlm.encoder.imageSize * vlm.encoder.imageSize;
// Ids only matter to the model; decoding needs some tokenizer whose ids cover a few of them.
const tokenizer = CharTokenizer.build({ characters: 'abcdefghijklmnopqrstuvwxyz0123456789 .,!?' });

function image(seed: number): Float32Array {
  return randn([3, vlm.encoder.imageSize, vlm.encoder.imageSize], seed, 'float32').data as Float32Array;
}

function rows(t: HostTensor): number[][] {
  const [b, n] = t.shape;
  return Array.from({ length: b }, (_, r) => Array.from(t.data.slice(r * n, (r + 1) * n), Number));
}

const img = vlm.imageTokenId;

describe('VLM inference with images', () => {
  test('forward with images reproduces the PyTorch reference logits of the LLaVA fixture', async () => {
    const ids = rows(ref.get('ids')!);
    const pixels = ref.get('pixel_values')!.data as Float32Array;
    const runner = new ForwardRunner(vlm, folder.weights);
    try {
      const out = await runner.run(
        { ids, images: ids.map((_, r) => [pixels.slice(r * imageSize, (r + 1) * imageSize)]) },
        { logits: true },
      );
      const logits = ref.get('logits')!.data as Float32Array;
      const [b, t, v] = ref.get('logits')!.shape;
      const got = out.logits!.data as Float32Array;
      for (let r = 0; r < b; r++) {
        const err = maxRelDiff(
          got.slice(r * out.length * v, r * out.length * v + t * v),
          logits.slice(r * t * v, (r + 1) * t * v),
        );
        assert.ok(err < 1e-4, `row ${r}: relative error ${err}`);
      }
    } finally {
      await runner.release();
    }
  });

  test('two images in one row fill their placeholder runs in order', async () => {
    const [a, b] = [image(1), image(2)];
    const ids = expandImagePlaceholders([1, 5, img, 7, img, 9, 11], img, vlm.imageTokens);
    const runner = new ForwardRunner(vlm, folder.weights);
    try {
      const out = await runner.run({ ids: [ids], images: [[a, b]] }, { logits: true });
      const swapped = await runner.run({ ids: [ids], images: [[b, a]] }, { logits: true });
      // Reference: each image's features computed on its own, concatenated in order, spliced by the same rule.
      const graph = new Graph();
      const pb = new ParamBuilder(graph);
      const size = vlm.encoder.imageSize;
      const both = graph.input('pixels', 'float32', [2, 3, size, size]);
      const f = vlm.imageFeatures(pb, both);
      const n = vlm.imageTokens;
      const features = T.concat(
        [T.slice(f, [0], [0], [1]), T.slice(f, [0], [1], [2])].map((x) => T.reshape(x, [1, n, f.shape[2]])),
        1,
      );
      const idsIn = graph.input('ids', 'int64', [1, ids.length]);
      const logits = pb.scope(
        'language_model',
        () =>
          vlm.decoder.forward(pb, {
            ids: idsIn,
            editEmbeds: (e) => spliceImageFeatures(e, idsIn, features, img),
          }).logits,
      );
      const program = await Program.compile(graph, { outputs: { logits }, bind: folder.weights });
      const pixels = new Float32Array(2 * imageSize);
      pixels.set(a);
      pixels.set(b, imageSize);
      const want = await program.run({
        ids: { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids.map(BigInt)) },
        pixels: { dtype: 'float32', shape: [2, 3, size, size], data: pixels },
      });
      await program.release();
      const v = vlm.vocabSize;
      const len = ids.length * v;
      const err = maxRelDiff(
        (out.logits!.data as Float32Array).slice(0, len),
        want.logits.data as Float32Array,
      );
      assert.ok(err < 1e-5, `two images: relative error ${err}`);
      const diff = maxRelDiff(
        (out.logits!.data as Float32Array).slice(0, len),
        (swapped.logits!.data as Float32Array).slice(0, len),
      );
      assert.ok(diff > 1e-3, 'swapping the two images changes the logits');
    } finally {
      await runner.release();
    }
  });

  test('generation with images: KV cache = full re-forward, whatever the batch holds', async () => {
    const prompts: PromptInput[] = [
      { ids: [1, 5, img, 7, 9], images: [image(3)] },
      { ids: [1, 6, 8, 10, 12, 14] },
      { ids: [1, img, 4, img, 3], images: [image(4), image(5)] },
      { ids: [1, img, 13], images: [image(6)] },
    ];
    const generator = new Generator(vlm, folder.weights, tokenizer);
    try {
      const options = { maxNewTokens: 6, stopTokenIds: [] as number[] };
      const cached = await generator.generate(prompts, { ...options, batchSize: 4 });
      const uncached = await generator.generate(prompts, { ...options, batchSize: 4, useCache: false });
      assert.deepEqual(
        cached.map((g) => g.tokenIds),
        uncached.map((g) => g.tokenIds),
      );
      for (const [i, p] of prompts.entries()) {
        const [alone] = await generator.generate([p], options);
        assert.deepEqual(alone.tokenIds, cached[i].tokenIds, `prompt ${i} alone`);
      }
      assert.equal(cached[0].promptTokens, 4 + vlm.imageTokens, 'the placeholder is expanded');
      // The image is read: another image gives other tokens for at least one prompt.
      const other = await generator.generate(
        [
          { ...prompts[0], images: [image(30)] },
          { ...prompts[3], images: [image(31)] },
        ],
        options,
      );
      assert.ok(
        other[0].tokenIds.join() !== cached[0].tokenIds.join() ||
          other[1].tokenIds.join() !== cached[3].tokenIds.join(),
        'generated tokens depend on the image',
      );
    } finally {
      await generator.release();
    }
  });

  test('per-prompt seeds, token budgets and stops do not depend on batching', async () => {
    const { model, weights } = tinyModel(3);
    const generator = new Generator(model, weights, charTokenizer);
    try {
      const prompts: PromptInput[] = [
        { ids: charTokenizer.encode('hello'), seed: 7, maxNewTokens: 5 },
        { ids: charTokenizer.encode('a b c'), seed: 11, maxNewTokens: 9 },
        { ids: charTokenizer.encode('xyz'), seed: 7, maxNewTokens: 3 },
      ];
      const options = { temperature: 1.5, stopTokenIds: [] as number[] };
      const together = await generator.generate(prompts, options);
      const alone = [];
      for (const p of prompts) alone.push((await generator.generate([p], options))[0]);
      assert.deepEqual(
        together.map((g) => g.tokenIds),
        alone.map((g) => g.tokenIds),
      );
      assert.deepEqual(
        together.map((g) => g.completionTokens),
        [5, 9, 3],
      );
      const reversed = await generator.generate([...prompts].reverse(), options);
      assert.deepEqual(
        reversed.map((g) => g.tokenIds).reverse(),
        together.map((g) => g.tokenIds),
      );
      // A per-prompt stop string cuts that prompt only.
      const text = together[1].text;
      const stop = text.slice(2, 3);
      const [cut, uncut] = await generator.generate([{ ...prompts[1], stop: [stop] }, prompts[1]], options);
      assert.equal(cut.text, text.slice(0, text.indexOf(stop)));
      assert.equal(uncut.text, text);
    } finally {
      await generator.release();
    }
  });

  test('log-likelihood with images equals the log-softmax of the full logits', async () => {
    const context = [1, 5, img, 7, 9];
    const continuation = [11, 13, 17];
    const pixels = image(8);
    const runner = new ForwardRunner(vlm, folder.weights);
    try {
      const [r] = await loglikelihoodTokens(runner, [{ context, continuation, images: [pixels] }]);
      const ids = [...expandImagePlaceholders(context, img, vlm.imageTokens), ...continuation];
      const out = await runner.run({ ids: [ids], images: [[pixels]] }, { logits: true });
      const v = vlm.vocabSize;
      const logits = out.logits!.data as Float32Array;
      let want = 0;
      for (let k = 0; k < continuation.length; k++) {
        const pos = ids.length - continuation.length - 1 + k;
        const row = logits.subarray(pos * v, (pos + 1) * v);
        let max = -Infinity;
        for (const x of row) max = Math.max(max, x);
        let z = 0;
        for (const x of row) z += Math.exp(x - max);
        want += row[continuation[k]] - max - Math.log(z);
      }
      assert.ok(Math.abs(r.loglik - want) < 1e-4, `${r.loglik} vs ${want}`);
      assert.equal(r.tokens, 3);
      const [other] = await loglikelihoodTokens(runner, [{ context, continuation, images: [image(9)] }]);
      assert.notEqual(other.loglik, r.loglik, 'the image changes the score');
    } finally {
      await runner.release();
    }
  });

  test('bad image inputs give one clear error each', async () => {
    const generator = new Generator(vlm, folder.weights, tokenizer);
    const { model, weights } = tinyModel(1);
    const text = new Generator(model, weights, charTokenizer);
    try {
      await assert.rejects(
        generator.generate([{ ids: [1, img, img, 4], images: [image(1)] }]),
        /1 image\(s\) for 2 image placeholder/,
      );
      await assert.rejects(
        generator.generate([{ ids: [1, img, 4] }]),
        /0 image\(s\) for 1 image placeholder/,
      );
      await assert.rejects(
        generator.generate([{ ids: [1, img, 4], images: [new Float32Array(5)] }]),
        /image 0 has 5 values; the vision tower takes 3x16x16/,
      );
      await assert.rejects(text.generate([{ ids: [1, 2, 3], images: [image(1)] }]), /takes no images/);
    } finally {
      await generator.release();
      await text.release();
    }
  });
});
