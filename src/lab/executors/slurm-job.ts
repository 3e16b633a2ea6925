/**
 * What one SLURM array task does (`tlab run-one <dir> <id> --executor slurm`): executes its run with the job's
 * identity in run.json, and handles the scheduler's signals.
 *
 * - USR2 (`--signal=USR2@90` before the time limit, or `scancel --signal=USR2` to pre-empt it): the run stops —
 *   the trainer saves a checkpoint between steps; other stages stop where they are (their outputs are written
 *   atomically, and the eval grid keeps finished cells) — its record goes back to pending, and the job requeues
 *   itself (`scontrol requeue`). Its next start resumes from the checkpoint, which continues the same loss curve.
 * - TERM (`scancel`, `scontrol requeue` from outside, pre-emption with requeue): the run checkpoints the same way
 *   and its record goes back to pending; SLURM decides whether the job comes back.
 * - A run whose job has been requeued more than `max_requeues` times is failed with that reason instead of running
 *   (or requeueing) again. SLURM_RESTART_COUNT counts the requeues, whoever asked for them.
 */

import { executeRun } from '../execute-run.ts';
import type { Plan, PlannedRun } from '../plan/types.ts';
import { type RunRecord, RunStore } from '../store.ts';
import { SlurmCli, type SlurmCommands } from './slurm-commands.ts';

/** Stages that stop cleanly on the abort signal (the trainer checkpoints first); the others are requeued at once. */
const STOPS_CLEANLY = new Set<PlannedRun['stage']>(['pretrain', 'finetune']);

export interface SlurmJobOptions {
  maxRequeues: number;
  quiet?: boolean;
  env?: NodeJS.ProcessEnv;
  commands?: SlurmCommands;
  /** Signal source (default: this process; tests pass an EventEmitter). */
  signals?: SignalSource;
}

/** Where USR2/TERM arrive from: `process`, or any emitter with the same on/off. */
export interface SignalSource {
  on(event: 'SIGUSR2' | 'SIGTERM', listener: () => void): unknown;
  off(event: 'SIGUSR2' | 'SIGTERM', listener: () => void): unknown;
}

export interface SlurmJobOutcome {
  record: RunRecord;
  /** 'requeued': the job put itself back in the queue; 'stopped': signalled by the scheduler, left to it. */
  how: 'finished' | 'requeued' | 'stopped' | 'over-requeue-limit' | 'already-done';
}

/** The job's identity from SLURM's environment. */
export function slurmIdentity(env: NodeJS.ProcessEnv): {
  jobId: string | null;
  arrayJobId: string | null;
  index: number | null;
  restarts: number;
} {
  const index = env.SLURM_ARRAY_TASK_ID === undefined ? null : Number(env.SLURM_ARRAY_TASK_ID);
  return {
    jobId: env.SLURM_JOB_ID ?? null,
    arrayJobId: env.SLURM_ARRAY_JOB_ID ?? null,
    index: Number.isInteger(index) ? index : null,
    restarts: Number(env.SLURM_RESTART_COUNT ?? 0) || 0,
  };
}

function withExecutor(store: RunStore, id: string, patch: NonNullable<RunRecord['executor']>): RunRecord {
  const record = store.read(id)!;
  const next = { ...record, executor: { ...(record.executor ?? {}), ...patch } };
  store.write(next);
  return next;
}

export async function runSlurmTask(
  plan: Plan,
  run: PlannedRun,
  options: SlurmJobOptions,
): Promise<SlurmJobOutcome> {
  const env = options.env ?? process.env;
  const id = slurmIdentity(env);
  const store = new RunStore(plan.out);
  const executor: NonNullable<RunRecord['executor']> = {
    kind: 'slurm',
    ...(id.arrayJobId !== null && id.index !== null
      ? { job_id: `${id.arrayJobId}_${id.index}`, array_index: id.index }
      : id.jobId
        ? { job_id: id.jobId }
        : {}),
    requeues: id.restarts,
  };
  const existing = store.read(run.id);
  // A duplicate (an earlier attempt finished after requeueing itself): nothing to do.
  if (existing?.state === 'done') return { record: existing, how: 'already-done' };
  if (id.restarts > options.maxRequeues) {
    const record = store.ensure(run);
    store.write({ ...record, executor });
    return {
      record: store.fail(
        run.id,
        `${run.stage} run ${run.name}: its SLURM job was requeued ${id.restarts} times, more than executor.slurm.max_requeues (${options.maxRequeues}); last stop: ${String(existing?.executor?.interrupted ?? 'unknown')}`,
        null,
      ),
      how: 'over-requeue-limit',
    };
  }

  const controller = new AbortController();
  let signalled: 'SIGUSR2' | 'SIGTERM' | null = null;
  let wake: () => void = () => {};
  const woken = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const onSignal = (signal: 'SIGUSR2' | 'SIGTERM') => {
    if (signalled) return;
    signalled = signal;
    if (!options.quiet)
      process.stderr.write(`tlab run-one: ${signal} received; stopping ${run.name} to be requeued\n`);
    controller.abort(signal);
    wake();
  };
  const onUsr2 = () => onSignal('SIGUSR2');
  const onTerm = () => onSignal('SIGTERM');
  const signals = options.signals ?? process;
  signals.on('SIGUSR2', onUsr2);
  signals.on('SIGTERM', onTerm);
  try {
    const execution = executeRun(plan, run, { quiet: options.quiet, executor, signal: controller.signal });
    const record = STOPS_CLEANLY.has(run.stage)
      ? await execution
      : await Promise.race([execution, woken.then(() => null)]);
    if (!signalled || record?.state === 'done' || record?.state === 'failed')
      return { record: record ?? store.read(run.id)!, how: 'finished' };
    const why =
      signalled === 'SIGUSR2'
        ? 'USR2 (pre-empted, or its time limit is near)'
        : 'TERM (cancelled, requeued or pre-empted by the scheduler)';
    // Back to pending: a requeued attempt runs it again and resumes from its checkpoint.
    const current = store.read(run.id)!;
    store.write({
      ...current,
      state: 'pending',
      pid: null,
      error: null,
      log_tail: null,
      finished_at: new Date().toISOString(),
      executor: { ...executor, interrupted: why },
    });
    if (signalled === 'SIGTERM') return { record: store.read(run.id)!, how: 'stopped' };
    if (id.restarts + 1 > options.maxRequeues)
      return {
        record: store.fail(
          run.id,
          `${run.stage} run ${run.name}: stopped by ${why} after ${id.restarts} requeue(s); requeueing it again would exceed executor.slurm.max_requeues (${options.maxRequeues})`,
          null,
        ),
        how: 'over-requeue-limit',
      };
    if (!id.jobId) {
      return {
        record: store.fail(
          run.id,
          `${run.stage} run ${run.name}: stopped by ${why}, but SLURM_JOB_ID is not set, so it cannot requeue itself`,
          null,
        ),
        how: 'over-requeue-limit',
      };
    }
    try {
      await (options.commands ?? new SlurmCli()).requeue(id.jobId);
    } catch (error) {
      return {
        record: store.fail(run.id, `${run.stage} run ${run.name}: ${(error as Error).message}`, null),
        how: 'over-requeue-limit',
      };
    }
    return {
      record: withExecutor(store, run.id, { kind: 'slurm', requeued_at: new Date().toISOString() }),
      how: 'requeued',
    };
  } finally {
    signals.off('SIGUSR2', onUsr2);
    signals.off('SIGTERM', onTerm);
  }
}
