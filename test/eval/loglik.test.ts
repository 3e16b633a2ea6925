import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { ParameterStore } from '../../src/engine/runtime/param-store.ts';
import { TrainStep } from '../../src/engine/runtime/train-step.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { ForwardRunner } from '../../src/eval/forward.ts';
import { encodePair, LoglikScorer, loglikelihood } from '../../src/eval/loglik.ts';
import { initParams, ParamBuilder } from '../../src/nn/module.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { tinyModel, tokenizer } from './helpers.ts';
import { logSoftmaxAt, referenceForward } from './reference.ts';

const { model, weights } = tinyModel(4);
const runner = new ForwardRunner(model, weights);
after(() => runner.release());

test('the harness tokenization: trailing context spaces move to the continuation; empty context is BOS/EOS', () => {
  const ids = (s: string) => tokenizer.encode(s, { addSpecialTokens: false });
  assert.deepEqual(encodePair(tokenizer, 'the sky is ', 'blue'), {
    context: ids('the sky is'),
    continuation: ids(' blue'),
  });
  assert.deepEqual(encodePair(tokenizer, '', 'blue'), {
    context: [tokenizer.bosId ?? tokenizer.eosId!],
    continuation: ids('blue'),
  });
});

test('log-likelihood of a continuation is the sum of per-token log-softmax values of an independent full pass', async () => {
  const requests = [
    { context: 'the sky is', continuation: ' blue' },
    { context: 'a', continuation: 'bc' },
    { context: 'hello there, general', continuation: ' kenobi!' },
    { context: '', continuation: 'x' },
  ];
  const results = await loglikelihood(runner, tokenizer, requests, { batchSize: 3 });
  for (const [i, req] of requests.entries()) {
    const { context, continuation } = encodePair(tokenizer, req.context, req.continuation);
    const whole = [...context, ...continuation];
    const ref = await referenceForward(model, weights, whole.slice(0, -1));
    let expected = 0;
    let greedy = true;
    for (let k = 0; k < continuation.length; k++) {
      const t = context.length - 1 + k;
      expected += logSoftmaxAt(ref.logits[t], continuation[k]);
      const row = ref.logits[t];
      greedy &&= row.indexOf(Math.max(...row)) === continuation[k];
    }
    assert.ok(
      Math.abs(results[i].loglik - expected) < 1e-4,
      `request ${i}: ${results[i].loglik} vs ${expected}`,
    );
    assert.equal(results[i].isGreedy, greedy);
    assert.equal(results[i].tokens, continuation.length);
  }
});

test('the greedy continuation is reported as greedy', async () => {
  const context = tokenizer.encode('abc', { addSpecialTokens: false });
  const seq = [...context];
  for (let k = 0; k < 3; k++) {
    const ref = await referenceForward(model, weights, seq);
    const last = ref.logits[seq.length - 1];
    seq.push(last.indexOf(Math.max(...last)));
  }
  const text = tokenizer.decode(seq.slice(3));
  const [r] = await loglikelihood(runner, tokenizer, [{ context: 'abc', continuation: text }]);
  assert.equal(r.isGreedy, true);
});

/** A 2-layer GPT-2 trained for a few hundred steps to complete three sentences. */
async function trainedSentenceModel(sentences: string[]) {
  const tok = CharTokenizer.build({ corpus: sentences });
  const trained = tinyModel(5, { vocab_size: tok.vocabSize, n_positions: 32 });
  const len = Math.max(...sentences.map((s) => s.length)) + 1;
  const b = sentences.length;
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const ids = graph.input('ids', 'int64', [b, len]);
  const targets = graph.input('targets', 'int64', [b, len]);
  const loss = T.crossEntropy(trained.model.forward(pb, { ids }).logits, targets);
  const step = await TrainStep.compile({
    graph,
    loss,
    trainable: [...pb.specs.keys()].map((n) => graph.inputs.get(n)!),
    optimizer: { kind: 'adamw', weightDecay: 0 },
    stepsPerRun: 20,
  });
  const store = new ParameterStore(initParams(pb.specs.values(), 0));
  step.initState(store);
  const idData = new BigInt64Array(b * len);
  const targetData = new BigInt64Array(b * len).fill(-100n);
  sentences.forEach((s, r) => {
    const t = tok.encode(s, { addSpecialTokens: false });
    t.forEach((id, i) => {
      idData[r * len + i] = BigInt(id);
      if (i > 0) targetData[r * len + i - 1] = BigInt(id);
    });
  });
  const data: Record<string, HostTensor> = {
    ids: { dtype: 'int64', shape: [b, len], data: idData },
    targets: { dtype: 'int64', shape: [b, len], data: targetData },
  };
  for (let done = 0; done < 200; done += 20)
    await step.run(
      store,
      Array.from({ length: 20 }, () => ({ data, lr: [1e-2] })),
      done,
    );
  await step.release();
  return { tok, model: trained.model, weights: new Map(store.entries()) };
}

test('a tiny model trained on three sentences makes the multiple-choice scorer pick the right ending', async () => {
  const trained = await trainedSentenceModel(['the cat says meow.', 'the dog says woof.', 'a cow says moo.']);
  const scorer = new LoglikScorer(new ForwardRunner(trained.model, trained.weights), trained.tok);
  try {
    const choices = ['meow.', 'woof.', 'moo.'];
    for (const [context, answer] of [
      ['the cat says', 0],
      ['the dog says', 1],
      ['a cow says', 2],
    ] as const) {
      const score = await scorer.scoreMultipleChoice(context, choices);
      assert.equal(score.best, answer, `${context}: ${score.logliks}`);
      assert.equal(score.bestNormalized, answer);
      assert.equal(score.isGreedy[answer], true);
      const lengths = choices.map((c) => c.length);
      for (const [i, v] of score.normalized.entries())
        assert.ok(Math.abs(v - score.logliks[i] / lengths[i]) < 1e-12);
    }
  } finally {
    await scorer.runner.release();
  }
});
