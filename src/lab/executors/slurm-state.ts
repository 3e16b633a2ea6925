/**
 * SLURM job states as `squeue` and `sacct` print them, per array task: parsing their pipe-separated output
 * (`123_4|RUNNING|None`, a pending range `123_[5-9%2]|PENDING|JobArrayTaskLimit`, `CANCELLED by 0`), and what
 * each state means for a run: still going (pending, running, requeued), or over (completed, or ended another
 * way: failed, cancelled, timed out, out of memory, node failure...).
 */

/** A task's state as the scheduler reports it. */
export interface TaskStatus {
  /** The array index (or 0 for a job that is not an array). */
  index: number;
  /** The state's name, e.g. RUNNING, COMPLETED, CANCELLED. */
  state: string;
  /** squeue's reason (e.g. BeginTime, JobArrayTaskLimit) or sacct's exit code, when printed. */
  detail: string | null;
}

/** States in which a task will still run (or runs): the executor keeps waiting. */
const ACTIVE = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'RESIZING',
  'SUSPENDED',
  'SIGNALING',
  'STAGE_OUT',
  'STOPPED',
  'RESV_DEL_HOLD',
  'SPECIAL_EXIT',
]);

/** States of a task that is over without having been asked to (the run's own record may not say why). */
const ENDED_BADLY = new Set([
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'BOOT_FAIL',
  'DEADLINE',
  'PREEMPTED',
  'REVOKED',
]);

export type StateClass = 'active' | 'completed' | 'ended';

/** What a state means for the run: active (wait), completed (exit 0), ended (any other end). */
export function classifyState(state: string): StateClass {
  const s = state.toUpperCase();
  if (ACTIVE.has(s)) return 'active';
  if (s === 'COMPLETED') return 'completed';
  if (ENDED_BADLY.has(s)) return 'ended';
  // A state this code does not know (a newer SLURM): over only if it is not one of the waiting ones above.
  return 'ended';
}

/** Indices of an array expression: `3`, `0-4`, `0-9:2`, `1,3,5-7`, with an optional `%P` throttle. */
export function parseArrayIndices(expr: string): number[] {
  const body = expr.replace(/%\d+$/, '');
  const out: number[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part.trim());
    if (!m) throw new Error(`not a SLURM array index expression: '${expr}'`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    for (let i = from; i <= to; i += step) out.push(i);
  }
  return out;
}

/**
 * Per-task states of array job `arrayId` from `squeue -h -r -o '%i|%T|%r'` or `sacct -X -n -P -o
 * JobID,State,ExitCode` output. Lines of other jobs and of job steps (`123_4.batch`) are skipped; a pending range
 * expands to each of its tasks. A task listed twice (sacct lists each requeued attempt) keeps its last line.
 */
export function parseJobStates(text: string, arrayId: string): Map<number, TaskStatus> {
  const out = new Map<number, TaskStatus>();
  for (const line of text.split('\n')) {
    const fields = line.trim().split('|');
    if (fields.length < 2 || !fields[0]) continue;
    const id = fields[0].trim();
    if (id.includes('.')) continue;
    const state = fields[1].trim().split(/\s+/)[0].toUpperCase();
    const detail = fields[2]?.trim() || null;
    if (id === arrayId) {
      out.set(0, { index: 0, state, detail });
      continue;
    }
    if (!id.startsWith(`${arrayId}_`)) continue;
    const rest = id.slice(arrayId.length + 1);
    const indices = rest.startsWith('[') ? parseArrayIndices(rest.replace(/^\[|\]$/g, '')) : [Number(rest)];
    for (const index of indices) if (Number.isInteger(index)) out.set(index, { index, state, detail });
  }
  return out;
}

/** sbatch --parsable prints `<job id>` or `<job id>;<cluster>`. */
export function parseSbatchJobId(stdout: string): string {
  const first = stdout.trim().split('\n').pop()?.split(';')[0]?.trim() ?? '';
  if (!/^\d+$/.test(first)) throw new Error(`sbatch --parsable printed no job id: '${stdout.trim()}'`);
  return first;
}
