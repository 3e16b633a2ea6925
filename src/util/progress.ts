/**
 * Progress reporting for long work: a redrawn bar with rate and ETA on a TTY, one plain line per interval
 * otherwise (CI logs). Writes to stderr so stdout stays machine-readable.
 */
export interface ProgressOptions {
  total: number;
  label: string;
  unit?: string;
  /** Seconds between plain lines when stderr is not a TTY. */
  intervalSeconds?: number;
  stream?: NodeJS.WriteStream;
  /** Disable output entirely (tests, --quiet). */
  silent?: boolean;
  /** Items done before this run started (a resumed run): shown in the count, left out of the rate. */
  initial?: number;
}

export class Progress {
  private readonly start = performance.now();
  private lastPrint = 0;
  /** What the last plain line showed, so finish() does not repeat it in logs. */
  private lastShown = '';
  private done: number;
  private extra = '';
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY) && !process.env.CI;
    this.done = options.initial ?? 0;
  }

  /** Advances by `n` items and sets the free-text status shown after the bar (e.g. "loss 2.31"). */
  tick(n = 1, status?: string): void {
    this.done += n;
    if (status !== undefined) this.extra = status;
    const now = performance.now();
    const interval = this.tty ? 100 : (this.options.intervalSeconds ?? 10) * 1000;
    if (this.done >= this.options.total || now - this.lastPrint >= interval) {
      this.lastPrint = now;
      this.render(now);
    }
  }

  finish(status?: string): void {
    if (status !== undefined) this.extra = status;
    if (this.tty || this.lastShown !== `${this.done}|${this.extra}`) this.render(performance.now());
    if (this.tty && !this.options.silent) this.stream.write('\n');
  }

  private render(now: number): void {
    if (this.options.silent) return;
    const { total, label, unit = 'it' } = this.options;
    const seconds = (now - this.start) / 1000;
    const rate = seconds > 0 ? (this.done - (this.options.initial ?? 0)) / seconds : 0;
    const eta = rate > 0 ? (total - this.done) / rate : Number.NaN;
    const frac = total > 0 ? Math.min(1, this.done / total) : 1;
    const stats = `${this.done}/${total} ${formatRate(rate, unit)} eta ${formatSeconds(eta)}${this.extra ? ` ${this.extra}` : ''}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
      this.stream.write(`\r${label} [${bar}] ${stats}\x1b[K`);
    } else {
      this.stream.write(`${label} ${(frac * 100).toFixed(0)}% ${stats}\n`);
      this.lastShown = `${this.done}|${this.extra}`;
    }
  }
}

export function formatRate(rate: number, unit: string): string {
  if (rate >= 1000) return `${(rate / 1000).toFixed(1)}k ${unit}/s`;
  return `${rate.toFixed(rate >= 10 ? 0 : 2)} ${unit}/s`;
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${Math.round((seconds % 3600) / 60)}m`;
}
