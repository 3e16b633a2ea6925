/**
 * Failure lists: every sample of a finished cell that did not get full marks, joined with what is needed to look
 * at it — the task folder, its uid (for `tlab data gallery --failures` and the dashboard), its images as absolute
 * paths, the prompt's text, the prediction, the reference and the grader's details. Written atomically as
 * failures/<model>/<task>.jsonl beside the grader logs, worst first.
 */
import { join } from 'node:path';
import { messageText } from '../../data/task-format.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import type { GraderLogRow } from './schema.ts';

export interface FailureRow {
  model: string;
  task: string;
  /** The task folder (absolute). */
  task_dir: string;
  uid: string;
  score: number;
  prompt_text: string;
  prediction: string;
  reference: unknown;
  /** Absolute image paths, in prompt order. */
  images: string[];
  details: Record<string, unknown>;
}

/** Rows scoring below `threshold` (default 1: anything short of full marks), lowest score first, then log order. */
export function failureRows(
  model: string,
  task: string,
  taskDir: string,
  rows: readonly GraderLogRow[],
  threshold = 1,
): FailureRow[] {
  return rows
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.score < threshold)
    .sort((a, b) => a.r.score - b.r.score || a.i - b.i)
    .map(({ r }) => ({
      model,
      task,
      task_dir: taskDir,
      uid: r.uid,
      score: r.score,
      prompt_text: Array.isArray(r.prompt)
        ? (r.prompt as Parameters<typeof messageText>[0][]).map(messageText).filter(Boolean).join('\n')
        : String(r.prompt),
      prediction: r.prediction,
      reference: r.reference,
      images: r.images.map((f) => join(taskDir, f)),
      details: r.details,
    }));
}

/** Writes failures/<model>/<task>.jsonl under the grid folder; returns its path relative to it. */
export function writeFailures(out: string, rows: readonly FailureRow[], model: string, task: string): string {
  const file = join('failures', model, `${task}.jsonl`);
  writeFileAtomic(join(out, file), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return file;
}
