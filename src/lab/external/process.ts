/**
 * Child processes of external tools (trainers, inference servers): started in their own process group with their
 * output appended to a log file, stopped as a group (SIGTERM, then SIGKILL after a grace period) so that workers
 * they fork (torchrun's, vLLM's) go too, and never left behind when this process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { TlabError } from '../../util/errors.ts';

export interface Spawned {
  child: ChildProcess;
  /** Resolves when the process has exited (code, or the signal that ended it). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Spawned>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Starts `argv` with stdout and stderr appended to `logPath`. */
export function spawnLogged(
  argv: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; logPath: string; what: string },
): Spawned {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // An external process must not outlive us (a crashed or interrupted tlab).
    process.on('exit', () => {
      for (const s of live) killGroup(s.child, 'SIGKILL');
    });
  }
  mkdirSync(dirname(options.logPath), { recursive: true });
  mkdirSync(options.cwd, { recursive: true });
  const fd = openSync(options.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(argv[0], argv.slice(1), {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (error) => {
      resolve({ code: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126, signal: null });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const spawned: Spawned = {
    child,
    exited,
    async stop(graceMs = 30_000) {
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(spawned);
  void exited.then(() => live.delete(spawned));
  return spawned;
}

/** The last `lines` lines of a log file ('' when there is none). */
export function tailOf(path: string, lines = 20): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs `argv` to completion (stopping it when `signal` fires) and throws a TlabError naming `what`, the exit code
 * and the log's tail when it fails.
 */
export async function runLogged(
  argv: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; logPath: string; what: string; signal?: AbortSignal },
): Promise<void> {
  const p = spawnLogged(argv, options);
  const onAbort = () => void p.stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { code, signal } = await p.exited;
    if (options.signal?.aborted)
      throw new TlabError(`${options.what}: stopped (${String(options.signal.reason ?? 'aborted')})`);
    if (code === 127)
      throw new TlabError(
        `${options.what}: cannot start '${argv[0]}' (not found on PATH); install it or set the command in the experiment file`,
      );
    if (code !== 0)
      throw new TlabError(
        `${options.what}: ${argv[0]} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; log ${options.logPath}`,
        tailOf(options.logPath) || undefined,
      );
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
