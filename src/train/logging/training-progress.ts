/**
 * The training progress line: step/total, loss, learning rate, tokens/s and ETA, on top of util/progress
 * (a redrawn bar on a TTY, one plain line per interval in CI logs).
 */
import { formatRate, Progress } from '../../util/progress.ts';

export interface TrainingProgressOptions {
  totalSteps: number;
  /** Step the run starts from (a resumed run); counted as done, left out of the rates. */
  startStep?: number;
  label?: string;
  /** Seconds between plain lines when not on a TTY; default 10. */
  intervalSeconds?: number;
  stream?: NodeJS.WriteStream;
  silent?: boolean;
  /** Optimizer steps over which tokens/s is averaged; default 20 (the first steps include graph compilation). */
  windowSteps?: number;
  /** Clock in seconds (tests inject one). */
  now?: () => number;
}

export interface StepReport {
  /** Optimizer steps this report covers (several when one run() executes K steps); default 1. */
  steps?: number;
  loss?: number;
  learningRate?: number;
  /** Tokens processed in these steps (non-padding tokens, for an honest rate). */
  tokens?: number;
}

export class TrainingProgress {
  private readonly progress: Progress;
  private readonly now: () => number;
  private readonly window: { time: number; tokens: number }[] = [];
  private totalTokens = 0;
  private lastStatus = '';

  constructor(private readonly options: TrainingProgressOptions) {
    this.now = options.now ?? (() => performance.now() / 1000);
    this.progress = new Progress({
      total: options.totalSteps,
      initial: options.startStep ?? 0,
      label: options.label ?? 'train',
      unit: 'step',
      intervalSeconds: options.intervalSeconds,
      stream: options.stream,
      silent: options.silent,
    });
    this.window.push({ time: this.now(), tokens: 0 });
  }

  /** Tokens per second over the last `windowSteps` reports. */
  get tokensPerSecond(): number {
    const first = this.window[0];
    const last = this.window[this.window.length - 1];
    const seconds = last.time - first.time;
    return seconds > 0 ? (last.tokens - first.tokens) / seconds : 0;
  }

  /** Records finished optimizer steps and redraws (rate-limited by Progress). */
  step(report: StepReport = {}): void {
    this.totalTokens += report.tokens ?? 0;
    this.window.push({ time: this.now(), tokens: this.totalTokens });
    if (this.window.length > (this.options.windowSteps ?? 20) + 1) this.window.shift();
    this.lastStatus = this.status(report);
    this.progress.tick(report.steps ?? 1, this.lastStatus);
  }

  finish(status?: string): void {
    this.progress.finish(status ?? this.lastStatus);
  }

  private status(report: StepReport): string {
    const parts: string[] = [];
    if (report.loss !== undefined) parts.push(`loss ${formatLoss(report.loss)}`);
    if (report.learningRate !== undefined) parts.push(`lr ${report.learningRate.toExponential(1)}`);
    if (this.totalTokens > 0) parts.push(formatRate(this.tokensPerSecond, 'tok'));
    return parts.join(' ');
  }
}

function formatLoss(loss: number): string {
  if (!Number.isFinite(loss)) return String(loss);
  return Math.abs(loss) >= 100 ? loss.toFixed(1) : loss.toFixed(4);
}
