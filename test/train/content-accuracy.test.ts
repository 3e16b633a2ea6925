/**
 * Accuracy that means what it says: the causal-LM objective's metrics count content targets only (no special
 * tokens, never the unknown token) and the teacher-forced exact match of whole rows. A model that always emits
 * the end-of-turn token used to score 50% on one-word answers; it scores 0 now, and a model that has only learnt
 * the template and the majority answer scores exactly the majority-answer baseline.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskExample } from '../../src/data/task-format.ts';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import { ExampleBatcher } from '../../src/train/batcher.ts';
import { majorityAnswerBaseline } from '../../src/train/content-tokens.ts';
import { causalLmObjective } from '../../src/train/objective.ts';
import { accuracyOf } from '../../src/train/trainer.ts';

const V = 6;
const [PAD, UNK, END, YES, NO, MAYBE] = [0, 1, 2, 3, 4, 5];
const I = -100;
// Six one-word answers followed by the end-of-turn token: four "yes", two "no" (majority baseline 4/6).
// Targets sit at positions 1 and 2 (the prompt token at 0 predicts the answer word, the word predicts END).
const answers = [YES, YES, NO, YES, NO, YES];
const targets = answers.map((a) => [I, a, END, I]);
const B = targets.length;
const L = 4;

/** A stand-in decoder whose logits are fixed: argmax `predict[b][t]` at every position. */
function fixedModel(predict: number[][]): DecoderLm {
  return {
    vocabSize: V,
    forward: (pb: ParamBuilder) => {
      const values = new Array<number>(B * L * V).fill(0);
      predict.forEach((row, b) => {
        row.forEach((id, t) => {
          values[(b * L + t) * V + id] = 10;
        });
      });
      return { logits: T.constant(pb.graph, 'float32', [B, L, V], values) };
    },
  } as unknown as DecoderLm;
}

async function metrics(predict: number[][], rows = targets): Promise<ReturnType<typeof accuracyOf>> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph, 'float32');
  const out = causalLmObjective(fixedModel(predict), B, L, 0, null, [PAD, UNK, END]).build(graph, pb);
  const outputs = { count: out.count, ...Object.fromEntries(Object.entries(out.metrics)) };
  const program = await Program.compile(graph, { outputs });
  const int = (v: number[]): HostTensor => ({
    dtype: 'int64',
    shape: [B, L],
    data: BigInt64Array.from(v.map(BigInt)),
  });
  const r = await program.run({
    ids: int(new Array(B * L).fill(YES)),
    targets: int(rows.flat()),
    attention_mask: int(new Array(B * L).fill(1)),
  });
  const sums = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v.data[0])]));
  return accuracyOf(sums, sums.count);
}

test('a model that always emits the end-of-turn token gets 0 answer accuracy and 0 exact match (not 50%)', async () => {
  const m = await metrics(answers.map(() => [END, END, END, END]));
  assert.deepEqual(m, { accuracy: 0, exact_match: 0, tokens: 6, rows: 6 });
});

test('a model that learnt only the template and the majority answer scores the majority-answer baseline', async () => {
  const m = await metrics(answers.map(() => [END, YES, END, END]));
  const examples = answers.map(
    (a, i): TaskExample => ({
      uid: `u${i}`,
      split: 'train',
      messages: [],
      answer: a === YES ? 'yes' : 'no',
      metadata: {} as TaskExample['metadata'],
    }),
  );
  const chance = majorityAnswerBaseline(examples, examples, 'train')!;
  assert.equal(chance.majority_answer, 'yes');
  assert.equal(chance.exact_match, 4 / 6);
  assert.equal(m.accuracy, chance.exact_match, 'at chance, where counting END said (4 + 6) / 12');
  assert.equal(m.exact_match, 4 / 6);
});

test('a target that is the unknown token never counts as correct, even when the model predicts it', async () => {
  const rows = targets.map((r, b) => (b < 3 ? [I, UNK, END, I] : r));
  const m = await metrics(
    rows.map((r) => [END, r[1], END, END]),
    rows,
  );
  assert.deepEqual(
    m,
    { accuracy: 1, exact_match: 1, tokens: 3, rows: 3 },
    'only the three encodable answers count',
  );
});

test('exact match needs every content target of a row: one wrong word of two fails the row', async () => {
  const two = answers.map((a) => [a, MAYBE, END, I]);
  // Row 0's first word (yes) is predicted as no; every other content target is right.
  const predict = two.map((r, b) => [b === 0 ? NO : r[0], MAYBE, END, END]);
  const m = await metrics(predict, two);
  assert.equal(m.exact_match, 5 / 6);
  assert.equal(m.accuracy, 11 / 12);
});

test('an evaluation batcher counts each example once: rows that wrap into the next epoch have no targets', () => {
  const examples = Array.from({ length: 5 }, (_, i) => ({ ids: [1, 2, 3], labels: [I, 2, 3], uid: `e${i}` }));
  const b = new ExampleBatcher(examples, {
    batchSize: 4,
    seqLen: 3,
    seed: 0,
    padId: 0,
    ordered: true,
    once: true,
  });
  const trained = (k: number) =>
    [0, 1, 2, 3].map((r) =>
      [...(b.batch(k).targets.data as BigInt64Array).slice(r * 3, r * 3 + 3)].some((t) => t !== -100n),
    );
  assert.deepEqual(trained(0), [true, true, true, true]);
  assert.deepEqual(
    trained(1),
    [true, false, false, false],
    'e0, e1, e2 again are padding, not a second vote',
  );
});
