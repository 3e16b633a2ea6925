/** Learning-rate schedules, evaluated on the host and fed to the step graph as an input. */
import { TlabError } from '../../util/errors.ts';

export interface ScheduleConfig {
  kind: 'constant' | 'cosine' | 'linear';
  /** Linear warmup from 0 over this many steps. */
  warmupSteps?: number;
  totalSteps?: number;
  /** Final LR as a fraction of the peak (cosine and linear). */
  minRatio?: number;
}

/** LR multiplier for 0-based `step` (the update about to be applied), in [0, 1]. */
export function lrMultiplier(config: ScheduleConfig, step: number): number {
  const warmup = config.warmupSteps ?? 0;
  if (warmup > 0 && step < warmup) return (step + 1) / warmup;
  if (config.kind === 'constant') return 1;
  const total = config.totalSteps;
  if (!total || total <= warmup) {
    throw new TlabError(
      `schedule '${config.kind}' needs totalSteps greater than warmupSteps (${warmup}), got ${total}`,
    );
  }
  const minRatio = config.minRatio ?? 0;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  const shape = config.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return minRatio + (1 - minRatio) * shape;
}
