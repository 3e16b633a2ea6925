/** What every stage gets: the plan (paths, base folder), the run, and where to report progress. */
import { isAbsolute, join, resolve } from 'node:path';
import type { Plan, PlannedRun } from '../plan/types.ts';

export interface StageContext {
  plan: Plan;
  run: PlannedRun;
  /** No progress output. */
  quiet: boolean;
  /** Aborted when the run must stop early (a pre-empted SLURM job): stages that can, checkpoint and stop. */
  signal?: AbortSignal;
}

/** A path of the run's config: relative ones are inside the experiment folder. */
export function inExperiment(ctx: StageContext, path: string): string {
  return isAbsolute(path) ? path : join(ctx.plan.out, path);
}

/** A path the user wrote in the experiment file (relative to its folder). */
export function fromConfigFile(ctx: StageContext, path: string): string {
  return resolve(ctx.plan.base_dir, path);
}

/** Where error messages say a run's settings come from. */
export function runWhere(ctx: StageContext): string {
  return `${ctx.plan.file}: ${ctx.run.stage} run ${ctx.run.name}`;
}

export type StageResult = Record<string, unknown>;
