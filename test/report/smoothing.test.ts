/**
 * TensorBoard's smoothing (src/report/shared/smoothing.js) against its closed form: after k finite points the
 * debiased EMA is the exponentially weighted mean Σ_{i≤k} w^(k−i) x_i / Σ_{i≤k} w^(k−i) (an independent formula,
 * computed here directly), and the pass-through rules TensorBoard has (non-finite values, constant series).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { debiasedEma } from '../../src/report/shared/smoothing.js';

function weightedMean(xs: number[], w: number): number[] {
  return xs.map((_, k) => {
    let num = 0;
    let den = 0;
    for (let i = 0; i <= k; i++) {
      num += w ** (k - i) * xs[i];
      den += w ** (k - i);
    }
    return num / den;
  });
}

test('the debiased EMA equals the exponentially weighted mean of the points so far', () => {
  const xs = Array.from({ length: 50 }, (_, i) => Math.sin(i / 3) * 2 + 0.1 * i + (i % 7) * 0.3);
  for (const w of [0, 0.3, 0.6, 0.9, 0.999]) {
    const got = debiasedEma(xs, w);
    const want = weightedMean(xs, w);
    for (const [i, g] of got.entries())
      assert.ok(Math.abs(g - want[i]) < 1e-9 * (1 + Math.abs(want[i])), `w=${w} i=${i}: ${g} vs ${want[i]}`);
  }
  assert.deepEqual(debiasedEma(xs, 0), xs, 'weight 0 leaves the series as it is');
  assert.equal(debiasedEma(xs, 0.9)[0], xs[0], 'the first point is not pulled towards 0 (the debiasing)');
});

test('non-finite values pass through and do not count; a constant series stays constant', () => {
  const got = debiasedEma([1, Number.NaN, 3, Number.POSITIVE_INFINITY, 5], 0.5);
  const finite = weightedMean([1, 3, 5], 0.5);
  assert.equal(got[0], finite[0]);
  assert.ok(Number.isNaN(got[1]));
  assert.equal(got[2], finite[1]);
  assert.equal(got[3], Number.POSITIVE_INFINITY);
  assert.ok(Math.abs(got[4] - finite[2]) < 1e-12);
  assert.deepEqual(debiasedEma([2.5, 2.5, 2.5], 0.99), [2.5, 2.5, 2.5]);
  assert.deepEqual(debiasedEma([], 0.6), []);
});

test('weights outside [0, 1) are refused', () => {
  for (const w of [-0.1, 1, 1.5, Number.NaN])
    assert.throws(() => debiasedEma([1, 2], w), /smoothing weight must be in \[0, 1\)/);
});
