/**
 * The portable export as transformers.js (@huggingface/transformers on onnxruntime-node, no network) loads it:
 * its greedy `generate` gives the tokens this project's generator (`tlab generate`) gives, alone and in a
 * left-padded batch, and its forward pass gives this project's logits within 1e-4 — for tiny random GPT-2,
 * Llama (GQA, untied head) and Qwen2 (q/k/v biases, tied head) folders made here. LLaVA's three parts run
 * through transformers.js's LlavaForConditionalGeneration: the PyTorch fixture's logits
 * (test/fixtures/models/make_model_fixtures.py) and this project's greedy tokens with the image.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  env,
  LlavaForConditionalGeneration,
  type PreTrainedModel,
  Tensor,
} from '@huggingface/transformers';
import { Generator } from '../../src/eval/generate.ts';
import { loadModelFolder, type ModelFolder } from '../../src/models/hf/model-folder.ts';
import { exportPortableFolder } from '../../src/models/onnx-export-folder.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { fixture, type TinyArch, tinyFolder, tokenizer } from './export-helpers.ts';
import { assertClose, expected, int64, runModel } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-tjs-'));
after(() => rmSync(root, { recursive: true, force: true }));

before(() => {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;
  env.localModelPath = root;
});

const PROMPTS = ['the quick brown', 'hello, world', 'a'];
const NEW_TOKENS = 10;

async function transformersGreedy(
  model: PreTrainedModel,
  ids: number[][],
  padId: number,
): Promise<number[][]> {
  // Left padding, as for any batched generation with a decoder.
  const t = Math.max(...ids.map((r) => r.length));
  const rows = ids.map((r) => [...new Array(t - r.length).fill(padId), ...r]);
  const mask = ids.map((r) => [...new Array(t - r.length).fill(0), ...new Array(r.length).fill(1)]);
  const input_ids = new Tensor('int64', int64([ids.length * t], rows.flat()).data, [ids.length, t]);
  const attention_mask = new Tensor('int64', int64([ids.length * t], mask.flat()).data, [ids.length, t]);
  const out = (await model.generate({
    input_ids,
    attention_mask,
    max_new_tokens: NEW_TOKENS,
    do_sample: false,
  })) as Tensor;
  const width = out.dims[1];
  const data = Array.from(out.data as BigInt64Array, Number);
  return ids.map((_, r) => data.slice(r * width + t, (r + 1) * width));
}

/** transformers.js keeps generating padding after a row stops; cut after the first stop token. */
function untilStop(tokens: number[], stop: readonly number[]): number[] {
  const i = tokens.findIndex((x) => stop.includes(x));
  return i < 0 ? tokens : tokens.slice(0, i + 1);
}

for (const arch of ['gpt2', 'llama', 'qwen2'] as TinyArch[]) {
  describe(`transformers.js runs an exported ${arch}`, () => {
    let folder: ModelFolder;
    let model: PreTrainedModel;
    before(async () => {
      folder = tinyFolder(join(root, `${arch}-src`), arch);
      exportPortableFolder(join(root, arch), folder);
      model = await AutoModelForCausalLM.from_pretrained(arch, { dtype: 'fp32', device: 'cpu' });
    });
    after(async () => {
      await model?.dispose();
    });

    test('greedy generate gives the same tokens as this project, alone and in a left-padded batch', async () => {
      const tok = folder.tokenizer!;
      const generator = new Generator(folder.model as DecoderLm, folder.weights, tok);
      try {
        const ours = await generator.generate(PROMPTS, { maxNewTokens: NEW_TOKENS });
        const ids = PROMPTS.map((p) => tok.encode(p));
        const padId = tok.padId ?? tok.eosId ?? 0;
        const batched = await transformersGreedy(model, ids, padId);
        for (const [i, g] of ours.entries()) {
          const alone = (await transformersGreedy(model, [ids[i]], padId))[0];
          assert.deepEqual(untilStop(alone, tok.stopIds), g.tokenIds, `prompt ${i} alone`);
          assert.deepEqual(untilStop(batched[i], tok.stopIds), g.tokenIds, `prompt ${i} in the batch`);
        }
        assert.ok(
          ours.some((g) => g.tokenIds.length === NEW_TOKENS),
          'at least one prompt runs to the token limit (the comparison covers whole generations)',
        );
      } finally {
        await generator.release();
      }
    });

    test("the forward pass gives this project's logits within 1e-4", async () => {
      const tok = folder.tokenizer!;
      const ids = PROMPTS.slice(0, 2).map((p) => tok.encode(p));
      const t = Math.max(...ids.map((r) => r.length));
      // Right padding here: padded positions are compared too, and both sides mask them the same way.
      const rows = ids.map((r) => [...r, ...new Array(t - r.length).fill(0)]);
      const mask = ids.map((r) => [...new Array(r.length).fill(1), ...new Array(t - r.length).fill(0)]);
      const input_ids = int64([2, t], rows.flat());
      const attention_mask = int64([2, t], mask.flat());
      const reference = await runModel(folder, folder.weights, { input_ids, attention_mask });
      const out = await model({
        input_ids: new Tensor('int64', input_ids.data as BigInt64Array, [2, t]),
        attention_mask: new Tensor('int64', attention_mask.data as BigInt64Array, [2, t]),
      });
      const logits = out.logits as Tensor;
      assert.deepEqual(logits.dims, reference.logits.shape);
      // Real tokens only: at padded positions transformers.js feeds position id 1 (its cumsum fill), this
      // project's uncached forward the index, and neither output is used.
      const v = logits.dims[2];
      const keep = (data: Float32Array) =>
        Float32Array.from(
          mask.flat().flatMap((m, i) => (m ? Array.from(data.subarray(i * v, (i + 1) * v)) : [])),
        );
      const real = (data: Float32Array) => ({
        dtype: 'float32' as const,
        shape: [keep(data).length],
        data: keep(data),
      });
      const err = assertClose(
        real(logits.data as Float32Array),
        real(reference.logits.data as Float32Array),
        `${arch} logits`,
      );
      assert.ok(err < 1e-4);
    });
  });
}

test('`tlab export` then transformers.js: the completion text equals `tlab generate`', async () => {
  const src = join(root, 'cli-src');
  tinyFolder(src, 'gpt2', 11);
  const tlab = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
  const exported = tlab('export', src, '--out', join(root, 'cli'), '--json');
  assert.equal(exported.status, 0, exported.stderr);
  const files = JSON.parse(exported.stdout);
  assert.deepEqual(
    files.onnx.map((o: { file: string }) => o.file),
    ['onnx/model.onnx'],
  );
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'])
    assert.ok(files.files.includes(f), f);
  const generation = JSON.parse(readFileSync(join(root, 'cli', 'generation_config.json'), 'utf8'));
  assert.equal(typeof generation.eos_token_id, 'number');
  const generated = tlab('generate', '-m', src, '-p', 'the quick brown', '-n', String(NEW_TOKENS), '--json');
  assert.equal(generated.status, 0, generated.stderr);
  const completion = JSON.parse(generated.stdout.trim()).completion as string;

  // The README's snippet.
  const tokenizer = await AutoTokenizer.from_pretrained('cli');
  const model = await AutoModelForCausalLM.from_pretrained('cli', { dtype: 'fp32' });
  const inputs = tokenizer('the quick brown');
  const output = (await model.generate({
    ...inputs,
    max_new_tokens: NEW_TOKENS,
    do_sample: false,
  })) as Tensor;
  const promptLength = (inputs.input_ids as Tensor).dims[1];
  const text = tokenizer.decode(Array.from(output.data as BigInt64Array).slice(promptLength), {
    skip_special_tokens: true,
  });
  await model.dispose();
  assert.equal(text, completion);
});

for (const name of ['llava_llama_clip_mlp', 'llava_gpt2_vit_linear']) {
  test(`transformers.js's LlavaForConditionalGeneration runs the exported ${name}: PyTorch logits, our greedy tokens`, async () => {
    const folder = loadModelFolder(fixture(name));
    if (folder.kind !== 'vlm') throw new Error('not a VLM');
    exportPortableFolder(join(root, name), folder);
    const ref = expected(name);
    const ids = ref.get('ids')!;
    const pixels = ref.get('pixel_values')!;
    const t = ids.shape[1];
    const row0 = Array.from((ids.data as BigInt64Array).subarray(0, t), Number);
    const px0 = (pixels.data as Float32Array).slice(
      0,
      (pixels.data as Float32Array).length / pixels.shape[0],
    );
    const inputs = {
      input_ids: new Tensor('int64', BigInt64Array.from(row0, BigInt), [1, t]),
      attention_mask: new Tensor('int64', new BigInt64Array(t).fill(1n), [1, t]),
      pixel_values: new Tensor('float32', px0, [1, ...pixels.shape.slice(1)]),
    };
    const model = await LlavaForConditionalGeneration.from_pretrained(name, { dtype: 'fp32' });
    try {
      const logits = (await model(inputs)).logits as Tensor;
      const v = logits.dims[2];
      assertClose(
        { dtype: 'float32', shape: logits.dims, data: logits.data as Float32Array },
        {
          dtype: 'float32',
          shape: [1, t, v],
          data: (ref.get('logits')!.data as Float32Array).slice(0, t * v),
        },
        `${name} logits`,
      );
      // Within the context (GPT-2's 32 learned positions here): transformers.js does not stop at it.
      const budget = Math.min(NEW_TOKENS, folder.model.maxPositions - t);
      const out = (await model.generate({ ...inputs, max_new_tokens: budget, do_sample: false })) as Tensor;
      const theirs = Array.from(out.data as BigInt64Array, Number).slice(t);
      // This project's generator takes one placeholder per image and expands it; the fixture has it expanded.
      const image = folder.model.imageTokenId;
      const collapsed = row0.filter((x, i) => x !== image || row0[i - 1] !== image);
      const generator = new Generator(folder.model, folder.weights, tokenizer);
      try {
        const [ours] = await generator.generate([{ ids: collapsed, images: [px0] }], {
          maxNewTokens: budget,
          stopTokenIds: [],
        });
        // transformers.js stops at generation_config.json's EOS; ours ran without stop tokens.
        const generation = JSON.parse(readFileSync(join(root, name, 'generation_config.json'), 'utf8'));
        const cut = untilStop(theirs, [generation.eos_token_id].flat());
        assert.deepEqual(cut, ours.tokenIds.slice(0, cut.length));
        assert.ok(cut.length >= 3, 'several tokens compared');
      } finally {
        await generator.release();
      }
    } finally {
      await model.dispose();
    }
  });
}
