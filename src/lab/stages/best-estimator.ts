/**
 * The estimator that predicted each target's fine-tuned accuracy best (highest Kendall τ at the task's largest
 * n_samples), beside the model that really did best.
 */
import type { AccuracyRow, SweepSummary } from '../../metrics/sweep.ts';

type Correlation = SweepSummary['correlations'][number];

export interface BestEstimatorRow {
  task: string;
  n_samples: number;
  estimator: string;
  kendall_tau: number | null;
  kendall_ci95: Correlation['kendall_ci95'];
  reliability: string;
  actual_best: string | null;
}

/** An undefined τ (every model tied on the estimator or on accuracy: null, or NaN before JSON) never wins. */
const tauOf = (k: Correlation) =>
  k.kendall !== null && Number.isFinite(k.kendall) ? k.kendall : Number.NEGATIVE_INFINITY;

export function bestEstimators(
  correlations: readonly Correlation[],
  actual: readonly AccuracyRow[],
): BestEstimatorRow[] {
  const largest = new Map<string, number>();
  for (const k of correlations) largest.set(k.task, Math.max(largest.get(k.task) ?? 0, k.n_samples));
  return [...largest].map(([task, n]) => {
    const at = correlations.filter((k) => k.task === task && k.n_samples === n);
    const top = at.reduce((a, b) => (tauOf(b) > tauOf(a) ? b : a));
    const acc = actual.filter((a) => a.task === task);
    const actualBest = acc.reduce((a, b) => (b.accuracy > a.accuracy ? b : a), acc[0]);
    return {
      task,
      n_samples: n,
      estimator: top.metric,
      kendall_tau: tauOf(top) === Number.NEGATIVE_INFINITY ? null : top.kendall,
      kendall_ci95: top.kendall_ci95,
      reliability: top.reliability,
      actual_best: actualBest?.model ?? null,
    };
  });
}
