/** The inline executor: runs one after the other in this process. */
import { executeRun } from '../execute-run.ts';
import type { Plan, PlannedRun } from '../plan/types.ts';
import type { Executor, ExecutorOptions } from './types.ts';

export class InlineExecutor implements Executor {
  readonly kind = 'inline';

  async runBatch(plan: Plan, runs: readonly PlannedRun[], options: ExecutorOptions): Promise<void> {
    for (const run of runs) {
      options.onRunStart?.(run);
      await executeRun(plan, run, { quiet: options.quiet, executor: { kind: 'inline' } });
      options.onRunEnd?.(run);
    }
  }
}
