/**
 * The SLURM executor: one job array per stage of the ready runs (`sbatch --array=0-N%P`, split at the cluster's
 * MaxArraySize), each task running `tlab run-one` for one run (slurm-script.ts), then one scheduler call per array
 * per poll, backing off from poll_min_s to poll_max_s, until every task is over. Runs write their own outcome into
 * run.json; a task that ends without one (cancelled, out of memory, node failure, killed at its time limit) is
 * failed here with SLURM's state and the tail of its log. Pre-empted and timed-out runs requeue themselves
 * (slurm-job.ts); a requeued task is simply still pending.
 *
 * Dependencies between stages: the runner plans in rounds (runs whose upstream runs are all done), so a stage's
 * array is submitted when its inputs exist, rather than chained with --dependency=afterok. A failed upstream run
 * then blocks exactly its dependants (nothing is left in the queue waiting forever on a dependency that can never
 * be satisfied), a requeued upstream run needs no dependency bookkeeping, and the plan — whose ids depend on
 * upstream outputs — is recomputed from what was actually produced. The price is that `tlab run` stays up while
 * the study runs (as submitit's caller does); stopping it leaves the submitted jobs running, and the next
 * `tlab run` waits on them instead of submitting them again.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../../data/hash.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import type { SlurmSettings } from '../config/cluster-schema.ts';
import type { Plan, PlannedRun, Stage } from '../plan/types.ts';
import type { RunRow } from '../run.ts';
import { type RunRecord, RunStore } from '../store.ts';
import { SlurmCli, type SlurmCommands } from './slurm-commands.ts';
import { arrayScript, shellQuote, stageResources } from './slurm-script.ts';
import { classifyState, type TaskStatus } from './slurm-state.ts';
import type { Executor, ExecutorOptions } from './types.ts';
import { logTail } from './workers.ts';

const TLAB_BIN = fileURLToPath(new URL('../../../bin/tlab.js', import.meta.url));

/** One array job to submit: a stage's runs (at most max_array_size of them). */
export interface ArrayBatch {
  stage: Stage;
  runs: PlannedRun[];
  /** slurm/<stage>-<hash of the run ids> under the experiment folder. */
  dir: string;
  script: string;
}

interface Watched {
  run: PlannedRun;
  arrayId: string;
  index: number;
  /** SLURM's own output file of the task (null for a task adopted from an earlier invocation). */
  outFile: string | null;
  done: boolean;
}

/** slurm/<batch>/job.json: which array a batch of runs was submitted as. */
export interface Submission {
  array_id: string;
  stage: Stage;
  /** Run ids in array-index order. */
  runs: string[];
  submitted_at: string;
}

/** Each run's latest submission (array id, index, SLURM's output file) from the experiment's slurm/ folder. */
export function submittedJobs(
  out: string,
): Map<string, { arrayId: string; index: number; outFile: string; submittedAt: string }> {
  const found = new Map<string, { arrayId: string; index: number; outFile: string; submittedAt: string }>();
  const root = join(out, 'slurm');
  if (!existsSync(root)) return found;
  for (const batch of readdirSync(root)) {
    const file = join(root, batch, 'job.json');
    if (!existsSync(file)) continue;
    let s: Submission;
    try {
      s = JSON.parse(readFileSync(file, 'utf8')) as Submission;
    } catch {
      continue;
    }
    if (!Array.isArray(s.runs) || typeof s.array_id !== 'string') continue;
    s.runs.forEach((id, index) => {
      const prev = found.get(id);
      if (!prev || prev.submittedAt < s.submitted_at)
        found.set(id, {
          arrayId: s.array_id,
          index,
          outFile: join(root, batch, `${s.array_id}_${index}.out`),
          submittedAt: s.submitted_at,
        });
    });
  }
  return found;
}

/** Consecutive failed scheduler queries of one array before the executor gives up on it. */
const MAX_QUERY_FAILURES = 10;

/**
 * How long a task that requeued itself may look over. Between `scontrol requeue` and the task's return to
 * PENDING, squeue can show the attempt that was cut short as FAILED (NonZeroExitCode) for a poll or two.
 */
export const REQUEUE_GRACE_MS = 120_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class SlurmExecutor implements Executor {
  readonly kind = 'slurm';

  constructor(
    readonly settings: SlurmSettings,
    readonly commands: SlurmCommands = new SlurmCli(),
    /** How the poll loop waits (tests record the back-off instead of sleeping). */
    private readonly wait: (ms: number) => Promise<unknown> = sleep,
    private readonly now: () => number = Date.now,
  ) {}

  /** The command that runs tlab on compute nodes. */
  tlabCommand(): string {
    return this.settings.tlab ?? `${shellQuote(process.execPath)} ${shellQuote(TLAB_BIN)}`;
  }

  /** The arrays a batch of ready runs becomes: one per stage, split at max_array_size. */
  arrays(plan: Plan, runs: readonly PlannedRun[]): ArrayBatch[] {
    if (/\s/.test(plan.out))
      throw new TlabError(
        `executor slurm: the experiment folder ${plan.out} has whitespace in its path, which #SBATCH lines cannot carry; choose another out`,
      );
    const byStage = new Map<Stage, PlannedRun[]>();
    for (const r of runs) byStage.set(r.stage, [...(byStage.get(r.stage) ?? []), r]);
    const out: ArrayBatch[] = [];
    const size = this.settings.max_array_size;
    for (const [stage, list] of byStage)
      for (let i = 0; i < list.length; i += size) {
        const chunk = list.slice(i, i + size);
        const dir = join(
          plan.out,
          'slurm',
          `${stage}-${sha256Hex(chunk.map((r) => r.id).join('\n')).slice(0, 12)}`,
        );
        const script = arrayScript({
          experiment: plan.experiment,
          stage,
          out: plan.out,
          batchDir: dir,
          count: chunk.length,
          resources: stageResources(this.settings, stage),
          maxParallel: this.settings.max_parallel,
          signalSeconds: this.settings.signal_seconds,
          maxRequeues: this.settings.max_requeues,
          tlab: this.tlabCommand(),
        });
        out.push({ stage, runs: chunk, dir, script });
      }
    return out;
  }

  /**
   * What `tlab run --executor slurm --dry-run` prints: the arrays of every round, assuming each round succeeds
   * (round 1 is exactly what would be submitted now; later rounds follow as their inputs are produced).
   */
  dryRun(plan: Plan, rows: readonly RunRow[], selected: ReadonlySet<string>): string {
    const state = new Map(rows.map((r) => [r.id, r.state]));
    const sections: string[] = [];
    for (let round = 1; ; round++) {
      const ready = plan.runs.filter(
        (r) =>
          selected.has(r.id) && state.get(r.id) === 'pending' && r.deps.every((d) => state.get(d) === 'done'),
      );
      if (ready.length === 0) break;
      for (const a of this.arrays(plan, ready)) {
        sections.push(
          [
            `# ---- round ${round}: ${a.stage}, ${a.runs.length} run(s): ${a.dir}/job.sbatch`,
            `# runs.txt: ${a.runs.map((r) => `${r.id} (${r.name})`).join(', ')}`,
            a.script,
          ].join('\n'),
        );
      }
      for (const r of ready) state.set(r.id, 'done');
    }
    return sections.length
      ? sections.join('\n')
      : '# nothing to submit: every selected run is done, running or blocked\n';
  }

  async runBatch(plan: Plan, runs: readonly PlannedRun[], options: ExecutorOptions): Promise<void> {
    const store = new RunStore(plan.out);
    const watched: Watched[] = [];
    // Runs whose task of an earlier invocation is still queued or running are waited on, not submitted again.
    const fresh: PlannedRun[] = [];
    const live = new Map<string, Map<number, TaskStatus> | null>();
    const submitted = submittedJobs(plan.out);
    for (const run of runs) {
      const job = submitted.get(run.id);
      if (job) {
        if (!live.has(job.arrayId))
          live.set(job.arrayId, await this.commands.query(job.arrayId).catch(() => null));
        const status = live.get(job.arrayId)?.get(job.index);
        if (status && classifyState(status.state) === 'active') {
          watched.push({ run, arrayId: job.arrayId, index: job.index, outFile: job.outFile, done: false });
          options.onRunStart?.(run);
          continue;
        }
      }
      fresh.push(run);
    }
    for (const a of this.arrays(plan, fresh)) {
      mkdirSync(a.dir, { recursive: true });
      writeFileAtomic(join(a.dir, 'runs.txt'), `${a.runs.map((r) => r.id).join('\n')}\n`);
      const scriptPath = join(a.dir, 'job.sbatch');
      writeFileAtomic(scriptPath, a.script);
      const arrayId = await this.commands.sbatch(scriptPath, plan.out);
      // The jobs record themselves in run.json when they start; until then this file says where each run is.
      const submission: Submission = {
        array_id: arrayId,
        stage: a.stage,
        runs: a.runs.map((r) => r.id),
        submitted_at: new Date().toISOString(),
      };
      writeJsonAtomic(join(a.dir, 'job.json'), submission);
      a.runs.forEach((run, index) => {
        watched.push({ run, arrayId, index, outFile: join(a.dir, `${arrayId}_${index}.out`), done: false });
        options.onRunStart?.(run);
      });
      if (!options.quiet)
        process.stderr.write(
          `slurm: submitted ${a.stage} array ${arrayId} (${a.runs.length} run(s)), script ${scriptPath}\n`,
        );
    }
    await this.watch(store, watched, options);
  }

  private async watch(store: RunStore, watched: Watched[], options: ExecutorOptions): Promise<void> {
    const failures = new Map<string, number>();
    let interval = this.settings.poll_min_s * 1000;
    while (watched.some((w) => !w.done)) {
      await this.wait(interval);
      interval = Math.min(interval * 2, this.settings.poll_max_s * 1000);
      const arrays = [...new Set(watched.filter((w) => !w.done).map((w) => w.arrayId))];
      for (const arrayId of arrays) {
        let states: Map<number, TaskStatus> | null;
        try {
          states = await this.commands.query(arrayId);
          failures.delete(arrayId);
        } catch (error) {
          const n = (failures.get(arrayId) ?? 0) + 1;
          failures.set(arrayId, n);
          if (n < MAX_QUERY_FAILURES) continue;
          states = null;
          if (!options.quiet)
            process.stderr.write(`slurm: giving up on array ${arrayId}: ${(error as Error).message}\n`);
        }
        for (const w of watched) {
          if (w.done || w.arrayId !== arrayId) continue;
          const status = states?.get(w.index) ?? null;
          if (status && classifyState(status.state) === 'active') continue;
          if (this.requeueUnderWay(store, w)) continue;
          w.done = true;
          this.settle(store, w, status);
          options.onRunEnd?.(w.run);
        }
      }
    }
  }

  /** The run stopped to be requeued a moment ago and has not started again: wait for SLURM to catch up. */
  private requeueUnderWay(store: RunStore, w: Watched): boolean {
    const record = store.read(w.run.id);
    if (record?.state !== 'pending' || record.executor?.kind !== 'slurm' || !record.executor.interrupted)
      return false;
    const stoppedAt = Date.parse(record.executor.requeued_at ?? record.finished_at ?? '');
    return Number.isFinite(stoppedAt) && this.now() - stoppedAt < REQUEUE_GRACE_MS;
  }

  /** A task is over: its run must have recorded an outcome, else it is failed with what SLURM says. */
  private settle(store: RunStore, w: Watched, status: TaskStatus | null): void {
    const record = store.read(w.run.id) ?? store.ensure(w.run);
    const slurmState = status?.state ?? 'UNKNOWN';
    const executor: RunRecord['executor'] = {
      kind: 'slurm',
      job_id: `${w.arrayId}_${w.index}`,
      array_index: w.index,
      ...(record.executor?.kind === 'slurm' ? record.executor : {}),
      state: slurmState,
    };
    if (record.state === 'done' || record.state === 'failed') {
      store.write({ ...record, executor });
      return;
    }
    const jobId = `${w.arrayId}_${w.index}`;
    const how = status
      ? `ended ${slurmState}${status.detail && status.detail !== 'None' ? ` (${status.detail})` : ''}`
      : 'is no longer known to the scheduler';
    const tails = [logTail(store.logPath(w.run.id)), w.outFile ? logTail(w.outFile, 10) : null].filter(
      (t): t is string => Boolean(t),
    );
    store.write({ ...record, executor });
    store.fail(
      w.run.id,
      `SLURM job ${jobId} ${how} without recording an outcome for ${w.run.stage} run ${w.run.name}`,
      tails.length ? tails.join('\n') : null,
    );
  }
}
