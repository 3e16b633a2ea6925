/**
 * The portable export as transformers.js (@huggingface/transformers on onnxruntime-node, no network) loads it:
 * its greedy `generate` gives the tokens this project's generator (`tlab generate`) gives, alone and in a
 * left-padded batch, and its forward pass gives this project's logits within 1e-4 — for tiny random GPT-2,
 * Llama (GQA, untied head) and Qwen2 (q/k/v biases, tied head) folders made here.
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
  type PreTrainedModel,
  Tensor,
} from '@huggingface/transformers';
import { Generator } from '../../src/eval/generate.ts';
import type { ModelFolder } from '../../src/models/hf/model-folder.ts';
import { exportPortableFolder } from '../../src/models/onnx-export-folder.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { type TinyArch, tinyFolder } from './export-helpers.ts';
import { assertClose, int64, runModel } from './helpers.ts';

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
