/**
 * The best estimator per target: the highest Kendall τ at the task's largest n_samples; an estimator whose τ is
 * undefined (NaN: every model tied) never wins, wherever it stands in the list.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestEstimators } from '../../src/lab/stages/best-estimator.ts';
import type { SweepSummary } from '../../src/metrics/sweep.ts';

const corr = (
  task: string,
  metric: string,
  n: number,
  kendall: number,
): SweepSummary['correlations'][number] => ({
  task,
  metric,
  n_samples: n,
  models: 4,
  kendall,
  kendall_ci95: [Math.min(kendall, 0), 1],
  weighted_kendall: kendall,
  spearman: kendall,
  pearson: kendall,
  relative_top1: 1,
  kendall_p_exact: null,
  tied_models: 0,
  reliability: 'uninformative: 4 models',
});

test('highest τ at the largest n_samples wins; NaN τ never does, even listed first', () => {
  const best = bestEstimators(
    [
      corr('shapes', 'gbc', 48, Number.NaN),
      corr('shapes', 'leep', 48, 0.55),
      corr('shapes', 'parc', 48, -0.9),
      corr('shapes', 'logme', 20, 0.99),
      corr('text', 'knn', 50, Number.NaN),
    ],
    [
      { model: 'a', task: 'shapes', accuracy: 0.7 },
      { model: 'b', task: 'shapes', accuracy: 1 },
    ],
  );
  assert.deepEqual(
    best.map((b) => [b.task, b.n_samples, b.estimator, b.kendall_tau, b.actual_best]),
    [
      ['shapes', 48, 'leep', 0.55, 'b'],
      // Only undefined τs: one is named, with τ null, and no actual best without accuracies.
      ['text', 50, 'knn', null, null],
    ],
  );
});
