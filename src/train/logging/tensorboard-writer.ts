/**
 * Writes TensorBoard event files natively (no TensorFlow): TFRecord-framed Event protos, scalars as the
 * classic Summary.Value.simple_value that every TensorBoard version reads. Records are only ever appended, so
 * a crash can at worst leave one incomplete record at the end, which readers skip.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import { DT_STRING, encodeEvent, type HistogramData, type SummaryValue } from './event-proto.ts';
import { frameRecord } from './tfrecord.ts';

export interface TensorBoardWriterOptions {
  /** Seconds between writes to the file; 0 (default) writes every event at once. */
  flushIntervalSeconds?: number;
  /** Also fsync on each flush (survives power loss, not only a process crash); default false. */
  fsync?: boolean;
  /** Clock in seconds since the epoch (tests inject a fixed one). */
  now?: () => number;
}

let fileCounter = 0;

export class TensorBoardWriter {
  /** The event file, `<logDir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>`. */
  readonly path: string;
  private fd: number | undefined;
  private pending: Uint8Array[] = [];
  private lastFlush: number;
  private readonly now: () => number;

  constructor(
    logDir: string,
    private readonly options: TensorBoardWriterOptions = {},
  ) {
    this.now = options.now ?? (() => Date.now() / 1000);
    const started = this.now();
    mkdirSync(logDir, { recursive: true });
    fileCounter += 1;
    // TensorBoard reads any file whose name contains "tfevents"; pid and counter keep concurrent writers apart.
    const name = `events.out.tfevents.${Math.floor(started)}.${hostname().replace(/[^\w.-]/g, '_')}.${process.pid}.${fileCounter}`;
    this.path = join(logDir, name);
    this.fd = openSync(this.path, 'wx');
    this.lastFlush = started;
    this.append({ wallTime: started, step: 0, fileVersion: 'brain.Event:2' });
    this.flush();
  }

  /** Logs one scalar. */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.addScalars({ [tag]: value }, step, wallTime);
  }

  /** Logs several scalars at one step as one Event. */
  addScalars(values: Readonly<Record<string, number>>, step: number, wallTime?: number): void {
    const summary = Object.entries(values).map(([tag, value]): SummaryValue => {
      if (typeof value !== 'number')
        throw new TlabError(`TensorBoard scalar "${tag}" is ${typeof value}, expected a number`);
      return { tag, simpleValue: value };
    });
    this.appendSummary(summary, step, wallTime);
  }

  /** Logs a text (rendered as Markdown by TensorBoard's text plugin). */
  addText(tag: string, text: string, step: number, wallTime?: number): void {
    const tensor = {
      dtype: DT_STRING,
      shape: [1],
      floatVal: [],
      doubleVal: [],
      stringVal: [new TextEncoder().encode(text)],
    };
    this.appendSummary([{ tag, tensor, pluginName: 'text' }], step, wallTime);
  }

  /** Logs the distribution of `values` as a histogram of `bins` equal-width buckets (default 30). */
  addHistogram(
    tag: string,
    values: ArrayLike<number>,
    step: number,
    options: { bins?: number; wallTime?: number } = {},
  ): void {
    this.appendSummary([{ tag, histo: histogramOf(values, options.bins ?? 30) }], step, options.wallTime);
  }

  /** Writes buffered events to the file (and fsyncs if asked). */
  flush(): void {
    if (this.fd === undefined || this.pending.length === 0) return;
    const chunks = this.pending;
    this.pending = [];
    for (const chunk of chunks) writeSync(this.fd, chunk);
    if (this.options.fsync) fsyncSync(this.fd);
    this.lastFlush = this.now();
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }

  private appendSummary(summary: SummaryValue[], step: number, wallTime?: number): void {
    if (!Number.isSafeInteger(step)) throw new TlabError(`TensorBoard step must be an integer, got ${step}`);
    this.append({ wallTime: wallTime ?? this.now(), step, summary });
    if (this.now() - this.lastFlush >= (this.options.flushIntervalSeconds ?? 0)) this.flush();
  }

  private append(event: Parameters<typeof encodeEvent>[0]): void {
    if (this.fd === undefined) throw new TlabError(`${this.path}: TensorBoard writer is closed`);
    this.pending.push(frameRecord(encodeEvent(event)));
  }
}

/** Equal-width buckets between the finite min and max; non-finite values are left out of the buckets. */
export function histogramOf(values: ArrayLike<number>, bins: number): HistogramData {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let num = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isFinite(x)) continue;
    num += 1;
    sum += x;
    sumSquares += x * x;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (num === 0) return { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] };
  const count = max > min ? Math.max(1, Math.floor(bins)) : 1;
  const width = (max - min) / count;
  const bucket = new Array<number>(count).fill(0);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (Number.isFinite(x)) bucket[Math.min(count - 1, width > 0 ? Math.floor((x - min) / width) : 0)] += 1;
  }
  const bucketLimit = bucket.map((_, i) => (i === count - 1 ? max : min + (i + 1) * width));
  return { min, max, num, sum, sumSquares, bucketLimit, bucket };
}
