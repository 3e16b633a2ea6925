/**
 * Executors run batches of ready runs (every dependency done); the runner plans, picks what is ready, hands it to
 * the executor and plans again when the batch is over, so an executor never needs to know the dependency graph.
 * Each run reports its own outcome in its run.json; an executor only has to start it and notice when it ends.
 */
import type { Plan, PlannedRun } from '../plan/types.ts';

export interface ExecutorOptions {
  quiet: boolean;
  /** Called as each run ends (done or failed). */
  onRunEnd?: (run: PlannedRun) => void;
  /** Called as each run starts. */
  onRunStart?: (run: PlannedRun) => void;
}

export interface Executor {
  readonly kind: string;
  /** Runs every run of `runs` (all ready) and resolves when each has ended. */
  runBatch(plan: Plan, runs: readonly PlannedRun[], options: ExecutorOptions): Promise<void>;
}
