/**
 * `tlab run`: plans the experiment, writes plan.json and the normalised experiment.yaml, then executes what is
 * missing in dependency order — each round hands every ready run (dependencies done) to the executor and plans
 * again — until nothing is ready. Done runs are never redone; failed ones stay failed (with their error) unless
 * retried; runs downstream of a failure are reported as blocked.
 */
import { join } from 'node:path';
import YAML from 'yaml';
import { HashCache } from '../eval/grid/fingerprint.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import { SlurmSettingsSchema } from './config/cluster-schema.ts';
import type { LoadedExperiment } from './config/load.ts';
import { InlineExecutor } from './executors/inline.ts';
import { SlurmExecutor } from './executors/slurm.ts';
import type { Executor } from './executors/types.ts';
import { WorkersExecutor } from './executors/workers.ts';
import { experimentDir, planExperiment } from './plan/plan.ts';
import type { Plan, PlannedRun } from './plan/types.ts';
import { type RunState, RunStore } from './store.ts';

export interface RunExperimentOptions {
  /** Only runs of these stages or whose names match these globs (`*` any characters). */
  only?: readonly string[];
  retryFailed?: boolean;
  /** Plan and report, execute nothing. */
  dryRun?: boolean;
  /** Overrides the config's executor. */
  executor?: Executor;
  out?: string;
  quiet?: boolean;
}

export interface RunRow {
  id: string;
  stage: PlannedRun['stage'];
  name: string;
  state: RunState | 'blocked';
  /** Names of the runs it still waits on (or the failed one that blocks it). */
  waiting: string[];
}

export interface ExperimentReport {
  plan: Plan;
  rows: RunRow[];
  /** Runs executed in this invocation. */
  executed: number;
}

function globMatcher(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

export function selectRuns(plan: Plan, only: readonly string[] | undefined): Set<string> {
  if (!only?.length) return new Set(plan.runs.map((r) => r.id));
  const stages = new Set(plan.runs.map((r) => r.stage));
  const matchers = only.filter((o) => !stages.has(o as PlannedRun['stage'])).map(globMatcher);
  const picked = plan.runs.filter(
    (r) => only.includes(r.stage) || matchers.some((m) => m.test(r.name) || m.test(`${r.stage}:${r.name}`)),
  );
  if (picked.length === 0)
    throw new TlabError(
      `--only ${only.join(',')}: matches no run; stages: ${[...stages].join(', ')} (or a glob over run names)`,
    );
  return new Set(picked.map((r) => r.id));
}

/** Each run's state, with pending runs downstream of a failure marked blocked. */
export function planStatus(plan: Plan, store: RunStore): RunRow[] {
  const state = new Map(plan.runs.map((r) => [r.id, store.effectiveState(store.read(r.id))]));
  const byId = new Map(plan.runs.map((r) => [r.id, r]));
  // The failed run upstream of each run, if any (memoised: runs are listed after their dependencies).
  const blockedBy = new Map<string, PlannedRun | null>();
  const failedUpstream = (r: PlannedRun): PlannedRun | null => {
    if (blockedBy.has(r.id)) return blockedBy.get(r.id)!;
    let found: PlannedRun | null = null;
    for (const d of r.deps) {
      const dep = byId.get(d)!;
      found = state.get(d) === 'failed' ? dep : failedUpstream(dep);
      if (found) break;
    }
    blockedBy.set(r.id, found);
    return found;
  };
  return plan.runs.map((r) => {
    const s = state.get(r.id)!;
    if (s === 'done' || s === 'failed' || s === 'running')
      return { id: r.id, stage: r.stage, name: r.name, state: s, waiting: [] };
    const blocker = failedUpstream(r);
    if (blocker)
      return {
        id: r.id,
        stage: r.stage,
        name: r.name,
        state: 'blocked',
        waiting: [`${blocker.stage}:${blocker.name} (failed)`],
      };
    const waiting = r.deps
      .filter((d) => state.get(d) !== 'done')
      .map((d) => `${byId.get(d)!.stage}:${byId.get(d)!.name}`);
    return { id: r.id, stage: r.stage, name: r.name, state: s, waiting };
  });
}

export function executorFor(loaded: LoadedExperiment): Executor {
  const e = loaded.config.executor;
  if (!e || e.kind === 'inline') return new InlineExecutor();
  if (e.kind === 'slurm') return new SlurmExecutor(e.slurm ?? SlurmSettingsSchema.parse({}));
  return new WorkersExecutor(e.workers ?? 2, e.threads);
}

export async function runExperiment(
  loaded: LoadedExperiment,
  options: RunExperimentOptions = {},
): Promise<ExperimentReport> {
  const out = options.out ? options.out : experimentDir(loaded.config);
  const hashes = new HashCache(join(out, '.hash-cache.json'));
  const plan = await planExperiment(loaded, { out, hashes });
  const store = new RunStore(out);
  const selected = selectRuns(plan, options.only);
  if (options.dryRun) return { plan, rows: planStatus(plan, store), executed: 0 };

  hashes.save();
  writeJsonAtomic(join(out, 'plan.json'), plan);
  writeFileAtomic(join(out, 'experiment.yaml'), YAML.stringify(loaded.config));
  for (const r of plan.runs) store.ensure(r);
  if (options.retryFailed) for (const r of plan.runs) if (selected.has(r.id)) store.reset(r.id);

  const executor = options.executor ?? executorFor(loaded);
  const todo = planStatus(plan, store).filter((r) => selected.has(r.id) && r.state === 'pending').length;
  const progress = new Progress({
    total: todo,
    label: 'experiment',
    unit: 'run',
    silent: options.quiet || todo === 0,
  });
  let executed = 0;
  for (;;) {
    const rows = new Map(planStatus(plan, store).map((r) => [r.id, r.state]));
    const ready = plan.runs.filter(
      (r) =>
        selected.has(r.id) && rows.get(r.id) === 'pending' && r.deps.every((d) => rows.get(d) === 'done'),
    );
    if (ready.length === 0) break;
    await executor.runBatch(plan, ready, {
      quiet: options.quiet ?? false,
      onRunStart: (run) => progress.tick(0, `${run.stage} ${run.name}`),
      onRunEnd: (run) => {
        executed += 1;
        const r = store.read(run.id);
        progress.tick(1, `${run.stage} ${run.name} ${r?.state ?? ''}`);
      },
    });
  }
  progress.finish();
  return { plan, rows: planStatus(plan, store), executed };
}
