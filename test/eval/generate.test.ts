import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Generator } from '../../src/eval/generate.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { tinyModel, tokenizer } from './helpers.ts';

const { model, weights } = tinyModel(1);
const generator = new Generator(model, weights, tokenizer);
after(() => generator.release());

// Different lengths, so batches are left-padded; 5 prompts in batches of 3 also exercise a ragged last batch.
const prompts = ['hello world', 'a', 'the quick brown fox jumps', 'zz top', 'how are you?'];
const noStop = { stopTokenIds: [] as number[] };

test('greedy generation with the KV cache gives the same tokens as full re-forward passes', async () => {
  const cached = await generator.generate(prompts, { maxNewTokens: 24, batchSize: 3, ...noStop });
  const uncached = await generator.generate(prompts, {
    maxNewTokens: 24,
    batchSize: 3,
    useCache: false,
    ...noStop,
  });
  assert.deepEqual(
    cached.map((g) => g.tokenIds),
    uncached.map((g) => g.tokenIds),
  );
  // A random model's greedy output is not one repeated token, so the comparison means something.
  assert.ok(new Set(cached.flatMap((g) => g.tokenIds)).size > 4);
  // Per-row positions: a prompt gives the same tokens alone as in a padded batch.
  const alone = await generator.generate([prompts[0]], { maxNewTokens: 24, ...noStop });
  assert.deepEqual(alone[0].tokenIds, cached[0].tokenIds);
  for (const [i, g] of cached.entries()) {
    assert.equal(g.finishReason, 'length');
    assert.equal(g.completionTokens, 24);
    assert.equal(g.promptTokens, tokenizer.encode(prompts[i]).length);
    assert.equal(g.text, tokenizer.decode(g.tokenIds, { skipSpecialTokens: true }));
  }
});

test('sampling is reproducible with a seed, differs with another, and matches between cache paths', async () => {
  const options = { maxNewTokens: 16, temperature: 1.5, topP: 0.95, ...noStop };
  const a = await generator.generate(prompts, { ...options, seed: 7 });
  const b = await generator.generate(prompts, { ...options, seed: 7, batchSize: 2 });
  const c = await generator.generate(prompts, { ...options, seed: 8 });
  const d = await generator.generate(prompts, { ...options, seed: 7, useCache: false });
  const ids = (gs: { tokenIds: number[] }[]) => gs.map((g) => g.tokenIds);
  assert.deepEqual(ids(a), ids(b), 'one sampling stream per prompt: batching does not change the draw');
  assert.deepEqual(ids(a), ids(d));
  assert.notDeepEqual(ids(a), ids(c));
});

test('top-k = 1 equals greedy whatever the temperature', async () => {
  const greedy = await generator.generate(prompts, { maxNewTokens: 12, ...noStop });
  const topK1 = await generator.generate(prompts, {
    maxNewTokens: 12,
    temperature: 3,
    topK: 1,
    seed: 5,
    ...noStop,
  });
  assert.deepEqual(
    topK1.map((g) => g.tokenIds),
    greedy.map((g) => g.tokenIds),
  );
});

test('stop strings end a row and are trimmed; stop tokens end it with finish reason eos', async () => {
  const [full] = await generator.generate([prompts[2]], { maxNewTokens: 20, ...noStop });
  // A stop string taken from the middle of the greedy continuation (first occurrence at `at`).
  const at = 6;
  const stop = full.text.slice(at, at + 2);
  const cut = full.text.indexOf(stop);
  const [stopped] = await generator.generate([prompts[2]], {
    maxNewTokens: 20,
    stop: ['no such', stop],
    ...noStop,
  });
  assert.equal(stopped.finishReason, 'stop');
  assert.equal(stopped.text, full.text.slice(0, cut));
  assert.ok(stopped.completionTokens < 20);
  assert.deepEqual(stopped.tokenIds, full.tokenIds.slice(0, stopped.completionTokens));

  const eos = full.tokenIds[4];
  const first = full.tokenIds.indexOf(eos);
  const [ended] = await generator.generate([prompts[2]], { maxNewTokens: 20, stopTokenIds: [eos] });
  assert.equal(ended.finishReason, 'eos');
  assert.deepEqual(ended.tokenIds, full.tokenIds.slice(0, first + 1));
  assert.equal(ended.text, tokenizer.decode(full.tokenIds.slice(0, first), { skipSpecialTokens: true }));
});

test('max new tokens is respected per row, and rows finish independently in a batch', async () => {
  const full = await generator.generate(prompts, { maxNewTokens: 10, ...noStop });
  // A token that row 1 generates and some other row does not: row 1 ends early, that row runs to the budget.
  const eos = full[1].tokenIds.find((id) => full.some((g) => !g.tokenIds.includes(id)));
  assert.ok(eos !== undefined);
  const out = await generator.generate(prompts, { maxNewTokens: 10, stopTokenIds: [eos] });
  for (const g of out) {
    assert.ok(g.completionTokens <= 10);
    if (g.finishReason === 'length') assert.equal(g.completionTokens, 10);
    else assert.equal(g.tokenIds.at(-1), eos);
  }
  assert.equal(out[1].finishReason, 'eos');
  assert.ok(out.some((g) => g.finishReason === 'length'));
  const one = await generator.generate(['abc'], { maxNewTokens: 1, ...noStop });
  assert.equal(one[0].completionTokens, 1);
});

test('generation stops at the end of the context', async () => {
  const short = tinyModel(2, { n_positions: 20 });
  const g = new Generator(short.model, short.weights, tokenizer);
  try {
    const out = await g.generate(['abcdefghijklmnop', 'ab'], { maxNewTokens: 50, ...noStop });
    assert.equal(out[0].completionTokens, 20 - 16);
    assert.equal(out[0].finishReason, 'length');
    const ref = await g.generate(['abcdefghijklmnop', 'ab'], {
      maxNewTokens: 50,
      useCache: false,
      ...noStop,
    });
    assert.deepEqual(
      out.map((x) => x.tokenIds),
      ref.map((x) => x.tokenIds),
    );
    await assert.rejects(
      g.generate(['abcdefghijklmnopqrst']),
      /prompt 0 has 20 tokens: the model's context of 20/,
    );
  } finally {
    await g.release();
  }
});

test('bad options are rejected with the option named', async () => {
  await assert.rejects(generator.generate(['a'], { temperature: -1 }), /temperature: expected a number >= 0/);
  await assert.rejects(generator.generate(['a'], { topP: 0 }), /topP: expected a number in \(0, 1\]/);
  await assert.rejects(generator.generate(['a'], { topP: 1.5 }), /topP/);
  await assert.rejects(generator.generate(['a'], { topK: 1.5 }), /topK: expected an integer/);
  await assert.rejects(
    generator.generate(['a'], { maxNewTokens: 0 }),
    /maxNewTokens: expected a positive integer/,
  );
  await assert.rejects(generator.generate([[999]]), /token id 999 is outside the vocabulary/);
});

test('Llama and Qwen2 folders (GQA, RoPE with per-row positions): cached and uncached generation agree', async () => {
  for (const name of ['llama_lm', 'qwen2_untied']) {
    const folder = loadModelFolder(`test/fixtures/models/${name}`);
    assert.equal(folder.kind, 'causal-lm');
    const lm = folder.model as DecoderLm;
    const g = new Generator(lm, folder.weights, tokenizer);
    try {
      // Token-id prompts of different lengths; ids past the tokenizer's vocabulary simply have no text.
      const idPrompts = [[5, 9, 2, 14, 7], [3], [12, 4, 8, 19, 21, 6, 2, 2, 9]];
      const options = { maxNewTokens: 12, batchSize: 3, stopTokenIds: [] };
      const cached = await g.generate(idPrompts, options);
      const uncached = await g.generate(idPrompts, { ...options, useCache: false });
      const alone = await g.generate([idPrompts[1]], options);
      assert.deepEqual(
        cached.map((x) => x.tokenIds),
        uncached.map((x) => x.tokenIds),
        name,
      );
      assert.deepEqual(alone[0].tokenIds, cached[1].tokenIds, `${name}: batched as alone`);
      assert.ok(new Set(cached.flatMap((x) => x.tokenIds)).size > 3, `${name}: varied output`);
    } finally {
      await g.release();
    }
  }
});
