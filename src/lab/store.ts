/**
 * The run store: one folder per run, runs/<id>/run.json (a RunRecord, docs/experiment-layout.md), rewritten
 * atomically at every state change; no database. A run is done only when its record says so; a record left
 * 'running' by a process that died (its pid gone on this host, or its heartbeat stale) is redone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { isJsonObject } from '../util/json-file.ts';
import type { PlannedRun, Stage } from './plan/types.ts';

export const RUN_SCHEMA = 'transferlab-run/1';

export type RunState = 'pending' | 'running' | 'done' | 'failed';

export interface RunRecord {
  schema: typeof RUN_SCHEMA;
  id: string;
  stage: Stage;
  name: string;
  params: PlannedRun['params'];
  deps: string[];
  outputs: string[];
  state: RunState;
  attempts: number;
  pid: number | null;
  host: string | null;
  heartbeat_at: string | null;
  executor: {
    kind: string;
    job_id?: string;
    array_index?: number;
    /** SLURM: times the job was requeued (SLURM_RESTART_COUNT), why it last stopped, its final state. */
    requeues?: number;
    interrupted?: string;
    requeued_at?: string;
    state?: string;
  } | null;
  started_at: string | null;
  finished_at: string | null;
  seconds: number | null;
  result: Record<string, unknown> | null;
  error: string | null;
  log_tail: string | null;
}

/** A running run whose heartbeat is older than this is presumed dead, wherever it runs. */
export const STALE_HEARTBEAT_MS = 10 * 60 * 1000;
/** How often a running run refreshes its heartbeat. */
export const HEARTBEAT_MS = 15 * 1000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class RunStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, 'runs', id);
  }

  path(id: string): string {
    return join(this.dir(id), 'run.json');
  }

  logPath(id: string): string {
    return join(this.dir(id), 'log.txt');
  }

  read(id: string): RunRecord | null {
    const path = this.path(id);
    if (!existsSync(path)) return null;
    try {
      const r = JSON.parse(readFileSync(path, 'utf8')) as RunRecord;
      return isJsonObject(r) && r.id === id ? r : null;
    } catch {
      // A record that does not parse cannot say the run is done: it is redone.
      return null;
    }
  }

  /** Every record on disk (status, dashboard). */
  all(): RunRecord[] {
    const runs = join(this.root, 'runs');
    if (!existsSync(runs)) return [];
    return readdirSync(runs).flatMap((id) => {
      const r = this.read(id);
      return r ? [r] : [];
    });
  }

  write(record: RunRecord): void {
    mkdirSync(this.dir(record.id), { recursive: true });
    writeJsonAtomic(this.path(record.id), record);
  }

  /** The record of a planned run, created pending when there is none. */
  ensure(run: PlannedRun): RunRecord {
    const existing = this.read(run.id);
    if (existing) return existing;
    const record: RunRecord = {
      schema: RUN_SCHEMA,
      id: run.id,
      stage: run.stage,
      name: run.name,
      params: run.params,
      deps: run.deps,
      outputs: run.outputs,
      state: 'pending',
      attempts: 0,
      pid: null,
      host: null,
      heartbeat_at: null,
      executor: null,
      started_at: null,
      finished_at: null,
      seconds: null,
      result: null,
      error: null,
      log_tail: null,
    };
    this.write(record);
    return record;
  }

  /** The state that counts: a 'running' record of a dead process reads as 'pending' (it will be redone). */
  effectiveState(record: RunRecord | null, now = Date.now()): RunState {
    if (!record) return 'pending';
    if (record.state !== 'running') return record.state;
    const beat = record.heartbeat_at ? Date.parse(record.heartbeat_at) : 0;
    if (now - beat > STALE_HEARTBEAT_MS) return 'pending';
    if (record.host === hostname() && record.pid !== null && !alive(record.pid)) return 'pending';
    return 'running';
  }

  /** Marks a run as started by this process. */
  start(run: PlannedRun, executor: RunRecord['executor']): RunRecord {
    const record = { ...this.ensure(run) };
    const now = new Date().toISOString();
    Object.assign(record, {
      state: 'running' as const,
      attempts: record.attempts + 1,
      pid: process.pid,
      host: hostname(),
      heartbeat_at: now,
      executor,
      started_at: now,
      finished_at: null,
      seconds: null,
      error: null,
      log_tail: null,
    });
    this.write(record);
    return record;
  }

  heartbeat(id: string): void {
    const record = this.read(id);
    if (record?.state !== 'running' || record.pid !== process.pid) return;
    this.write({ ...record, heartbeat_at: new Date().toISOString() });
  }

  finish(id: string, result: Record<string, unknown>): RunRecord {
    const record = this.read(id)!;
    const now = new Date();
    const done: RunRecord = {
      ...record,
      state: 'done',
      pid: null,
      heartbeat_at: now.toISOString(),
      finished_at: now.toISOString(),
      seconds: record.started_at ? (now.getTime() - Date.parse(record.started_at)) / 1000 : null,
      result,
      error: null,
    };
    this.write(done);
    return done;
  }

  fail(id: string, error: string, logTail: string | null): RunRecord {
    const record = this.read(id);
    if (!record) throw new Error(`unreachable: no record for run ${id}`);
    const now = new Date();
    const failed: RunRecord = {
      ...record,
      state: 'failed',
      pid: null,
      finished_at: now.toISOString(),
      seconds: record.started_at ? (now.getTime() - Date.parse(record.started_at)) / 1000 : null,
      error,
      log_tail: logTail,
    };
    this.write(failed);
    return failed;
  }

  /** Puts a failed run back to pending (`--retry-failed`). */
  reset(id: string): void {
    const record = this.read(id);
    if (record && record.state === 'failed')
      this.write({ ...record, state: 'pending', error: null, log_tail: null });
  }
}
