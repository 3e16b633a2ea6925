/**
 * Metrics as JSON Lines: one object per line, appended. A crash can leave a torn last line; readers skip it and
 * reopening for append cuts it off (with a warning), so a resumed run continues a clean file.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';

/** One logged line: the step, wall time (seconds since the epoch), split ("train", "eval", ...) and metrics. */
export interface MetricsRecord {
  step: number;
  time: number;
  split: string;
  [metric: string]: number | string | boolean | null;
}

export interface JsonlLoggerOptions {
  /** When to fsync: after every line, at most every `fsyncIntervalSeconds` (default), or only on close. */
  fsync?: 'every-line' | 'interval' | 'on-close';
  fsyncIntervalSeconds?: number;
  /** Drop records with step > this on open: a run resumed from the checkpoint at this step logs them again. */
  resumeFromStep?: number;
  /** Receives warnings (a torn line cut off, records dropped for a resume); default: process.emitWarning. */
  onWarning?: (message: string) => void;
  now?: () => number;
}

export class JsonlLogger {
  private fd: number | undefined;
  private lastSync: number;
  private readonly now: () => number;

  constructor(
    readonly path: string,
    private readonly options: JsonlLoggerOptions = {},
  ) {
    this.now = options.now ?? (() => Date.now() / 1000);
    const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, 'TlabWarning'));
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) prepareForAppend(path, options.resumeFromStep, warn);
    this.fd = openSync(path, 'a');
    this.lastSync = this.now();
  }

  /** Appends {step, time, split, ...metrics} as one line; each line is a single write, so it is never interleaved. */
  log(
    step: number,
    split: string,
    metrics: Readonly<Record<string, number | string | boolean | null>>,
  ): MetricsRecord {
    if (this.fd === undefined) throw new TlabError(`${this.path}: metrics log is closed`);
    if (!Number.isSafeInteger(step))
      throw new TlabError(`${this.path}: step must be an integer, got ${step}`);
    const record: MetricsRecord = { step, time: Math.round(this.now() * 1000) / 1000, split, ...metrics };
    // JSON has no NaN or Infinity: write them as strings rather than the null JSON.stringify would produce.
    const line = JSON.stringify(record, (_key, value) =>
      typeof value === 'number' && !Number.isFinite(value) ? String(value) : value,
    );
    writeSync(this.fd, `${line}\n`);
    const policy = this.options.fsync ?? 'interval';
    const due = this.now() - this.lastSync >= (this.options.fsyncIntervalSeconds ?? 30);
    if (policy === 'every-line' || (policy === 'interval' && due)) this.sync();
    return record;
  }

  close(): void {
    if (this.fd === undefined) return;
    this.sync();
    closeSync(this.fd);
    this.fd = undefined;
  }

  private sync(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    this.lastSync = this.now();
  }
}

export interface ReadJsonlResult<T> {
  records: T[];
  /** Byte offset where an incomplete last line starts (a crash mid-write), if there is one. */
  tornTailOffset?: number;
}

/**
 * Reads a JSON Lines file. An unterminated last line that does not parse is reported as torn, not an error;
 * any other line that does not parse is an error naming the file and line.
 */
export function readJsonl<T = MetricsRecord>(path: string): ReadJsonlResult<T> {
  if (!existsSync(path)) throw new TlabError(`${path}: file not found`);
  const text = readFileSync(path, 'utf8');
  const records: T[] = [];
  let offset = 0;
  let lineNo = 0;
  while (offset < text.length) {
    lineNo += 1;
    const newline = text.indexOf('\n', offset);
    const line = text.slice(offset, newline === -1 ? text.length : newline);
    if (line.trim() !== '') {
      try {
        records.push(JSON.parse(line) as T);
      } catch (error) {
        if (newline === -1) return { records, tornTailOffset: Buffer.byteLength(text.slice(0, offset)) };
        throw new TlabError(`${path}: line ${lineNo} is not valid JSON: ${(error as Error).message}`);
      }
    }
    if (newline === -1) break;
    offset = newline + 1;
  }
  return { records };
}

/** Cuts a torn last line, and records after `resumeFromStep`, so that appending continues a clean log. */
function prepareForAppend(
  path: string,
  resumeFromStep: number | undefined,
  warn: (message: string) => void,
): void {
  const { records, tornTailOffset } = readJsonl<MetricsRecord>(path);
  if (tornTailOffset !== undefined) {
    warn(
      `${path}: cut off an incomplete last line at byte ${tornTailOffset} (the previous run stopped mid-write)`,
    );
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, tornTailOffset);
    } finally {
      closeSync(fd);
    }
  }
  const text = readFileSync(path, 'utf8');
  if (text.length > 0 && !text.endsWith('\n')) {
    // A complete last object without its newline: terminate it so the next line starts cleanly.
    const fd = openSync(path, 'a');
    writeSync(fd, '\n');
    closeSync(fd);
  }
  if (resumeFromStep === undefined) return;
  const kept = records.filter((record) => !(typeof record.step === 'number' && record.step > resumeFromStep));
  if (kept.length === records.length) return;
  warn(
    `${path}: dropped ${records.length - kept.length} records after step ${resumeFromStep} (resuming from that step)`,
  );
  writeFileAtomic(path, kept.map((record) => `${JSON.stringify(record)}\n`).join(''));
}
