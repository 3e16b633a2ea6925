/**
 * A run's last training loss and evaluation. A run resumed from a checkpoint at its last step trains no step in
 * this session, so its own lists are empty: the figures then come from metrics.jsonl, which holds every step logged
 * before the interruption (the final step is always logged).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonl } from './logging/jsonl-log.ts';
import type { EvalRecord } from './trainer.ts';

export function finalMetrics(
  logDir: string,
  losses: readonly number[],
  evals: readonly EvalRecord[],
): { trainLoss: number | null; eval: EvalRecord | null } {
  let trainLoss = losses.at(-1) ?? null;
  let lastEval = evals.at(-1) ?? null;
  const path = join(logDir, 'metrics.jsonl');
  if ((trainLoss === null || lastEval === null) && existsSync(path)) {
    const records = readJsonl(path).records;
    const train = records.filter((r) => r.split === 'train' && typeof r.loss === 'number').at(-1);
    if (trainLoss === null && train) trainLoss = train.loss as number;
    const ev = records.filter((r) => r.split === 'eval' && typeof r.loss === 'number').at(-1);
    if (lastEval === null && ev) {
      const { time: _t, split: _s, ...fields } = ev;
      lastEval = fields as unknown as EvalRecord;
    }
  }
  return { trainLoss, eval: lastEval };
}
