/**
 * Does shift predict transfer? For every ordered task pair (i → j, i ≠ j) the transfer value is the mean of the
 * defined relative-gain indices index_m(i→j) over the fine-tuned models m trained on i (all strategies, and each
 * strategy alone); it is paired with the shift between i and j (every measure here is symmetric). Spearman's ρ
 * over the pairs, with a percentile bootstrap CI over pairs (src/metrics/rank-correlation.ts). Larger shift should
 * go with less transfer: a negative ρ.
 */
import { bootstrapInterval, spearman } from '../../metrics/rank-correlation.ts';
import type { TransferResult } from '../transfer.ts';

export interface TransferPoint {
  train_task: string;
  eval_task: string;
  /** Mean of the defined indices. */
  index: number;
  models: string[];
}

/** The (i → j) transfer values of a transfer analysis, optionally of one strategy's models only. */
export function transferPoints(transfer: TransferResult, strategy?: string): TransferPoint[] {
  const strategies = new Map(transfer.models.map((m) => [m.name, m.strategy]));
  const groups = new Map<string, TransferPoint & { sum: number }>();
  for (const c of transfer.cells) {
    if (c.train_task === null || c.train_task === c.task || c.transfer_index.value === null) continue;
    if (strategy !== undefined && strategies.get(c.model) !== strategy) continue;
    const key = `${c.train_task}\u0000${c.task}`;
    const g = groups.get(key) ?? {
      train_task: c.train_task,
      eval_task: c.task,
      index: 0,
      models: [],
      sum: 0,
    };
    g.sum += c.transfer_index.value;
    g.models.push(c.model);
    groups.set(key, g);
  }
  return [...groups.values()].map(({ sum, ...p }) => ({ ...p, index: sum / p.models.length }));
}

export interface CorrelationSettings {
  resamples: number;
  level: number;
  seed: number;
}

export interface Correlation {
  /** Task pairs with both a shift value and a transfer value. */
  pairs: number;
  spearman: number | null;
  low: number | null;
  high: number | null;
  /** Resamples with a defined ρ (not all tied). */
  valid_resamples: number;
  reason?: string;
}

export function correlate(shift: number[], transfer: number[], s: CorrelationSettings): Correlation {
  const pairs = shift.length;
  if (pairs < 3)
    return {
      pairs,
      spearman: null,
      low: null,
      high: null,
      valid_resamples: 0,
      reason: `${pairs} task pairs with both values; Spearman needs at least 3`,
    };
  const rho = spearman(shift, transfer);
  if (!Number.isFinite(rho))
    return {
      pairs,
      spearman: null,
      low: null,
      high: null,
      valid_resamples: 0,
      reason: 'one side is constant',
    };
  const ci = bootstrapInterval(spearman, shift, transfer, {
    resamples: s.resamples,
    level: s.level,
    seed: s.seed,
  });
  return {
    pairs,
    spearman: rho,
    low: Number.isFinite(ci.low) ? ci.low : null,
    high: Number.isFinite(ci.high) ? ci.high : null,
    valid_resamples: ci.valid,
  };
}
