/**
 * The log folder of one training run, `logs/<run>/`: metrics.jsonl (the record the lab and dashboard read)
 * and TensorBoard event files (for people who use TensorBoard), written side by side from one call.
 */
import { join } from 'node:path';
import { JsonlLogger, type JsonlLoggerOptions, type MetricsRecord } from './jsonl-log.ts';
import { TensorBoardWriter, type TensorBoardWriterOptions } from './tensorboard-writer.ts';

export interface TrainingLogsOptions {
  /** Also write TensorBoard event files; default true. */
  tensorboard?: boolean;
  jsonl?: JsonlLoggerOptions;
  tensorboardOptions?: TensorBoardWriterOptions;
}

export const METRICS_FILE = 'metrics.jsonl';

export class TrainingLogs {
  readonly metrics: JsonlLogger;
  readonly tensorboard: TensorBoardWriter | undefined;

  constructor(
    readonly logDir: string,
    options: TrainingLogsOptions = {},
  ) {
    this.metrics = new JsonlLogger(join(logDir, METRICS_FILE), options.jsonl);
    this.tensorboard =
      options.tensorboard === false ? undefined : new TensorBoardWriter(logDir, options.tensorboardOptions);
  }

  /**
   * Logs metrics of one split at one step: a JSONL line with all of them, and TensorBoard scalars
   * "<split>/<name>" for the numeric ones.
   */
  log(
    step: number,
    split: string,
    metrics: Readonly<Record<string, number | string | boolean | null>>,
  ): MetricsRecord {
    const record = this.metrics.log(step, split, metrics);
    const scalars: Record<string, number> = {};
    for (const [name, value] of Object.entries(metrics)) {
      if (typeof value === 'number') scalars[`${split}/${name}`] = value;
    }
    if (this.tensorboard && Object.keys(scalars).length > 0)
      this.tensorboard.addScalars(scalars, step, record.time);
    return record;
  }

  /** Free text (a config dump, sample generations) for TensorBoard's text tab. */
  logText(step: number, tag: string, text: string): void {
    this.tensorboard?.addText(tag, text, step);
  }

  close(): void {
    this.metrics.close();
    this.tensorboard?.close();
  }
}
