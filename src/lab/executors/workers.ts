/**
 * The workers executor: up to N child processes at once, each running one run (`tlab run-one`) with its output in
 * runs/<id>/log.txt and its intra-op threads set so that N × threads stays within the machine's cores. A worker
 * that dies without recording an outcome (a crash, the OOM killer) has its run marked failed with the tail of
 * its log; the others go on.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan, PlannedRun } from '../plan/types.ts';
import { RunStore } from '../store.ts';
import type { Executor, ExecutorOptions } from './types.ts';

const TLAB_BIN = fileURLToPath(new URL('../../../bin/tlab.js', import.meta.url));

/** The last `lines` lines of a log file (or null). */
export function logTail(path: string, lines = 20): string | null {
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8').trimEnd();
  return text ? text.split('\n').slice(-lines).join('\n') : null;
}

export class WorkersExecutor implements Executor {
  readonly kind = 'workers';
  readonly threads: number;

  constructor(
    readonly workers: number,
    threads?: number,
  ) {
    this.threads = threads ?? Math.max(1, Math.floor(availableParallelism() / workers));
  }

  async runBatch(plan: Plan, runs: readonly PlannedRun[], options: ExecutorOptions): Promise<void> {
    const queue = [...runs];
    const worker = async (): Promise<void> => {
      for (let run = queue.shift(); run; run = queue.shift()) {
        options.onRunStart?.(run);
        await this.runOne(plan, run, options);
        options.onRunEnd?.(run);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.workers, runs.length) }, worker));
  }

  private runOne(plan: Plan, run: PlannedRun, options: ExecutorOptions): Promise<void> {
    const store = new RunStore(plan.out);
    const logPath = store.logPath(run.id);
    mkdirSync(dirname(logPath), { recursive: true });
    const fd = openSync(logPath, 'a');
    return new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        [
          TLAB_BIN,
          'run-one',
          plan.out,
          run.id,
          '--executor',
          'workers',
          ...(options.quiet ? ['--quiet'] : []),
        ],
        {
          stdio: ['ignore', fd, fd],
          env: {
            ...process.env,
            TLAB_THREADS: String(this.threads),
            TLAB_LINALG_THREADS: String(this.threads),
          },
        },
      );
      const finish = (how: string) => {
        closeSync(fd);
        const record = store.read(run.id);
        if (!record || record.state === 'running' || record.state === 'pending') {
          // Died before recording an outcome.
          if (!record) store.ensure(run);
          store.fail(
            run.id,
            `worker process for ${run.name} ${how} without recording an outcome`,
            logTail(logPath),
          );
        }
        resolve();
      };
      child.on('error', (error) => finish(`could not start (${error.message})`));
      child.on('exit', (code, signal) =>
        finish(signal ? `was killed by ${signal}` : `exited with code ${code}`),
      );
    });
  }
}
