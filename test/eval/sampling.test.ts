import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax, chooseToken, filteredDistribution, type SamplingParams } from '../../src/eval/sampling.ts';
import { Rng } from '../../src/util/random.ts';

const probs = [0.5, 0.2, 0.15, 0.1, 0.05];
const logits = probs.map(Math.log);
const params = (p: Partial<SamplingParams>): SamplingParams => ({ temperature: 1, topK: 0, topP: 1, ...p });

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-12): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i] - expected[i]) < tol, `[${i}] ${actual[i]} vs ${expected[i]}`);
}

test('top-p keeps the smallest most-likely set reaching p, renormalised (hand-computed)', () => {
  // 0.5 < 0.75, 0.5 + 0.2 = 0.7 < 0.75, + 0.15 = 0.85 >= 0.75: three tokens.
  const d = filteredDistribution(logits, params({ topP: 0.75 }));
  assert.deepEqual([...d.ids], [0, 1, 2]);
  close(d.probs, [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85]);
  // The most likely token alone when it already reaches p.
  assert.deepEqual([...filteredDistribution(logits, params({ topP: 0.4 })).ids], [0]);
  // top-p = 1 keeps everything.
  close(filteredDistribution(logits, params({})).probs, probs);
});

test('temperature applies before top-p, and top-p sees the distribution renormalised after top-k', () => {
  // Temperature 2: p ∝ sqrt(p).
  const s = probs.map(Math.sqrt);
  const z = s.reduce((a, b) => a + b, 0);
  const tempered = s.map((x) => x / z); // 0.3396, 0.2148, 0.1860, ...
  const d = filteredDistribution(logits, params({ temperature: 2, topP: 0.5 }));
  assert.deepEqual([...d.ids], [0, 1]);
  close(d.probs, [tempered[0] / (tempered[0] + tempered[1]), tempered[1] / (tempered[0] + tempered[1])]);
  // top-k 2 leaves {0.5, 0.2} → {0.714, 0.286}: top-p 0.7 keeps only the first, top-p 0.8 both.
  assert.deepEqual([...filteredDistribution(logits, params({ topK: 2, topP: 0.7 })).ids], [0]);
  assert.deepEqual([...filteredDistribution(logits, params({ topK: 2, topP: 0.8 })).ids], [0, 1]);
});

test('top-k keeps the k largest (ties at the k-th value kept, as Hugging Face)', () => {
  assert.deepEqual([...filteredDistribution(logits, params({ topK: 3 })).ids], [0, 1, 2]);
  assert.deepEqual([...filteredDistribution([1, 3, 3, 0], params({ topK: 1 })).ids], [1, 2]);
  assert.deepEqual([...filteredDistribution([1, 3, 2, 0], params({ topK: 10 })).ids], [0, 1, 2, 3]);
});

test('greedy is the first argmax; draws follow the filtered distribution', () => {
  assert.equal(argmax([0, 2, 2, 1]), 1);
  assert.equal(chooseToken(logits, params({ temperature: 0 }), new Rng(0)), 0);
  const rng = new Rng(3);
  const counts = new Array(5).fill(0);
  const n = 20000;
  for (let i = 0; i < n; i++) counts[chooseToken(logits, params({ topP: 0.75 }), rng)]++;
  const expected = [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85, 0, 0];
  // 4.5 standard errors of a binomial proportion.
  counts.forEach((c, i) => {
    const se = Math.sqrt((expected[i] * (1 - expected[i])) / n);
    assert.ok(Math.abs(c / n - expected[i]) <= 4.5 * se + 1e-12, `token ${i}: ${c / n} vs ${expected[i]}`);
  });
});
