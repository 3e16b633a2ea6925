/**
 * Executes one planned run in this process: marks it running (pid, host, heartbeat), runs its stage, and records
 * done with the stage's result, or failed with the error and the tail of what it printed. Used by the inline
 * executor directly and by `tlab run-one` in worker and cluster jobs.
 */
import { TlabError } from '../util/errors.ts';
import type { Plan, PlannedRun } from './plan/types.ts';
import type { StageContext, StageResult } from './stages/context.ts';
import { runDataStage } from './stages/data.ts';
import { runEvalStage } from './stages/eval.ts';
import { runFeaturesStage, runMetricsStage } from './stages/features.ts';
import { runSummaryStage } from './stages/summary.ts';
import { runTokenizerStage } from './stages/tokenizer.ts';
import { runFinetuneStage, runPretrainStage } from './stages/train.ts';
import { HEARTBEAT_MS, type RunRecord, RunStore } from './store.ts';

const STAGE_RUNNERS: Record<PlannedRun['stage'], (ctx: StageContext) => Promise<StageResult>> = {
  data: runDataStage,
  tokenizer: runTokenizerStage,
  pretrain: runPretrainStage,
  finetune: runFinetuneStage,
  eval: runEvalStage,
  features: runFeaturesStage,
  metrics: runMetricsStage,
  summary: runSummaryStage,
};

/** The error as stored in run.json: its first line, then details or the stack. */
export function describeError(error: unknown): string {
  if (error instanceof TlabError) return [error.message, error.details].filter(Boolean).join('\n');
  if (error instanceof Error) return `${error.message}\n${error.stack ?? ''}`;
  return String(error);
}

export interface ExecuteOptions {
  quiet?: boolean;
  executor?: RunRecord['executor'];
  /** The last lines of what the run printed, for a failed record (workers capture them; inline has none). */
  logTail?: () => string | null;
  /** Stops the run early (pre-emption); an error after it fired leaves the run pending, not failed. */
  signal?: AbortSignal;
}

/** Runs `run` of `plan`; resolves with the final record whether it succeeded or failed. */
export async function executeRun(
  plan: Plan,
  run: PlannedRun,
  options: ExecuteOptions = {},
): Promise<RunRecord> {
  const store = new RunStore(plan.out);
  store.start(run, options.executor ?? { kind: 'inline' });
  const beat = setInterval(() => store.heartbeat(run.id), HEARTBEAT_MS);
  beat.unref();
  try {
    const result = await STAGE_RUNNERS[run.stage]({
      plan,
      run,
      quiet: options.quiet ?? false,
      signal: options.signal,
    });
    return store.finish(run.id, result);
  } catch (error) {
    if (options.signal?.aborted) {
      // Stopped on request (its checkpoint saved): not a failure; whoever stopped it runs it again.
      const stopped: RunRecord = { ...store.read(run.id)!, state: 'pending', pid: null, error: null };
      store.write(stopped);
      return stopped;
    }
    return store.fail(run.id, describeError(error), options.logTail?.() ?? null);
  } finally {
    clearInterval(beat);
  }
}
