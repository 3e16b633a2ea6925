/**
 * The SLURM commands the executor calls (sbatch, squeue or sacct, scontrol), behind one small interface so the
 * executor's bookkeeping is tested against a scripted scheduler as well as the real one. Job states come from
 * `sacct` where the cluster keeps accounting, else from `squeue --states=all` (which still lists jobs that ended
 * within MinJobAge): one call per array job.
 */
import { execFile } from 'node:child_process';
import { TlabError } from '../../util/errors.ts';
import { parseJobStates, parseSbatchJobId, type TaskStatus } from './slurm-state.ts';

export interface SlurmCommands {
  /** Submits a batch script; resolves with the job id. */
  sbatch(scriptPath: string, cwd: string): Promise<string>;
  /** Every task's state of an array job (one scheduler call), or null when the scheduler no longer knows the job. */
  query(arrayId: string): Promise<Map<number, TaskStatus> | null>;
  /** Puts a running job (an array task's own job id) back into the queue. */
  requeue(jobId: string): Promise<void>;
}

interface Output {
  code: number;
  stdout: string;
  stderr: string;
  missing: boolean;
}

function run(cmd: string, args: string[], cwd?: string, timeoutMs = 60_000): Promise<Output> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { code?: number | string }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr || (e && typeof e.code !== 'number' ? e.message : '')),
        missing: e?.code === 'ENOENT',
      });
    });
  });
}

const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

/** The real scheduler, through the commands on PATH (SLURM_CONF and friends come from the environment). */
export class SlurmCli implements SlurmCommands {
  /** null until the first query: whether sacct answers (clusters without accounting only have squeue). */
  private sacctWorks: boolean | null = null;

  async sbatch(scriptPath: string, cwd: string): Promise<string> {
    const r = await run('sbatch', ['--parsable', scriptPath], cwd);
    if (r.missing)
      throw new TlabError(
        'executor slurm: sbatch is not on PATH (run tlab on a SLURM login node, or start a local cluster with scripts/slurm-local.sh)',
      );
    if (r.code !== 0)
      throw new TlabError(
        `executor slurm: sbatch ${scriptPath} failed: ${firstLine(r.stderr) || `exit code ${r.code}`}`,
        r.stderr.trim() || undefined,
      );
    return parseSbatchJobId(r.stdout);
  }

  async query(arrayId: string): Promise<Map<number, TaskStatus> | null> {
    if (this.sacctWorks !== false) {
      const r = await run('sacct', ['-j', arrayId, '-X', '-n', '-P', '-o', 'JobID,State,ExitCode']);
      const disabled = /accounting storage is disabled/i.test(r.stdout + r.stderr);
      if (r.code === 0 && !disabled) {
        this.sacctWorks = true;
        const states = parseJobStates(r.stdout, arrayId);
        // sacct lags behind a fresh submission: fall through to squeue while it lists nothing.
        if (states.size > 0) return states;
      } else if (r.missing || disabled) this.sacctWorks = false;
    }
    const r = await run('squeue', ['-j', arrayId, '-h', '-r', '--states=all', '-o', '%i|%T|%r']);
    if (r.missing) throw new TlabError('executor slurm: squeue is not on PATH');
    if (r.code !== 0) {
      // squeue answers "Invalid job id specified" for a job that has left the controller's memory.
      if (/invalid job id/i.test(r.stderr)) return null;
      throw new TlabError(`executor slurm: squeue -j ${arrayId} failed: ${firstLine(r.stderr)}`);
    }
    const states = parseJobStates(r.stdout, arrayId);
    return states.size > 0 ? states : null;
  }

  async requeue(jobId: string): Promise<void> {
    const r = await run('scontrol', ['requeue', jobId]);
    if (r.code !== 0)
      throw new TlabError(
        `scontrol requeue ${jobId} failed: ${firstLine(r.stderr) || (r.missing ? 'scontrol is not on PATH' : `exit code ${r.code}`)}`,
      );
  }
}
