/**
 * `tlab status` for runs sent to SLURM: each run's job id (array_task), the run's own state, and what the
 * scheduler says now (one squeue/sacct call per array still in flight; the final state recorded in run.json for
 * the others), with how many times the job was requeued.
 */
import type { Plan } from '../plan/types.ts';
import type { RunRow } from '../run.ts';
import { RunStore } from '../store.ts';
import { submittedJobs } from './slurm.ts';
import { SlurmCli, type SlurmCommands } from './slurm-commands.ts';
import type { TaskStatus } from './slurm-state.ts';

export interface SlurmJobRow {
  run: string;
  stage: string;
  name: string;
  state: RunRow['state'];
  job_id: string;
  /** The scheduler's state now, the last one recorded, or null when neither is known. */
  slurm_state: string | null;
  requeues: number | null;
}

export async function slurmJobs(
  plan: Plan,
  rows: readonly RunRow[],
  commands: SlurmCommands = new SlurmCli(),
): Promise<SlurmJobRow[]> {
  const store = new RunStore(plan.out);
  const submitted = submittedJobs(plan.out);
  const out: (SlurmJobRow & { arrayId: string; index: number })[] = [];
  for (const row of rows) {
    const record = store.read(row.id);
    const own = record?.executor?.kind === 'slurm' ? record.executor : null;
    const sub = submitted.get(row.id);
    const jobId = sub ? `${sub.arrayId}_${sub.index}` : own?.job_id;
    if (!jobId) continue;
    const [arrayId, index] = jobId.split('_');
    out.push({
      run: row.id,
      stage: row.stage,
      name: row.name,
      state: row.state,
      job_id: jobId,
      slurm_state: own?.job_id === jobId ? (own.state ?? null) : null,
      requeues: own?.job_id === jobId ? (own.requeues ?? null) : null,
      arrayId,
      index: Number(index ?? 0),
    });
  }
  const live = new Map<string, Map<number, TaskStatus> | null>();
  for (const j of out) {
    if (j.state === 'done' || j.state === 'failed') continue;
    if (!live.has(j.arrayId)) live.set(j.arrayId, await commands.query(j.arrayId).catch(() => null));
    const status = live.get(j.arrayId)?.get(j.index);
    if (status)
      j.slurm_state =
        status.detail && status.detail !== 'None' ? `${status.state} (${status.detail})` : status.state;
  }
  return out.map(({ arrayId: _a, index: _i, ...row }) => row);
}

export function slurmJobsTable(jobs: readonly SlurmJobRow[]): string {
  const header = ['job', 'stage', 'name', 'run state', 'SLURM state', 'requeues'];
  const body = jobs.map((j) => [
    j.job_id,
    j.stage,
    j.name,
    j.state,
    j.slurm_state ?? '-',
    j.requeues === null ? '-' : String(j.requeues),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((x, i) => x.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
