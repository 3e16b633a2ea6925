/**
 * Evaluated examples for error analysis: the grader log rows of one (model, task) cell, and one uid across every
 * model that answered it, with the example as the task folder stores it (prompt, reference, image files). Task
 * folders are found inside the experiment (formatted_datasets/<task>, else the grid's path when it lies inside);
 * nothing outside the experiment folder is read.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { findExample, listBuiltTasks } from '../data/read.ts';
import type { TaskExample } from '../data/task-format.ts';
import type { EvalGrid, GraderLogRow, GridCell } from '../eval/grid/schema.ts';
import { readLogRows } from '../eval/grid/store.ts';
import { TlabError, validChoices } from '../util/errors.ts';
import { absoluteInside, realPathInside } from './inside.ts';

/** Where bookmarks live: the same file `tlab bookmark --root <experiment>/formatted_datasets` uses. */
export function bookmarksFile(dir: string): string {
  return join(dir, 'formatted_datasets', 'bookmarks.json');
}

/** The task folder of `task` inside the experiment, or null (not built here, or outside the folder). */
export function taskDirOf(dir: string, grid: EvalGrid | null, task: string): string | null {
  if (!/^[^/\\\0]+$/.test(task) || task === '.' || task === '..') return null;
  const own = realPathInside(dir, join('formatted_datasets', task));
  if (own && existsSync(join(own, 'manifest.json'))) return own;
  const t = grid?.tasks.find((x) => x.name === task);
  const there = t ? absoluteInside(dir, t.path) : null;
  return there && existsSync(join(there, 'manifest.json')) ? there : null;
}

/** Every task name the views know: grid tasks and built task folders. */
export function knownTasks(dir: string, grid: EvalGrid | null): string[] {
  const names = new Set(grid?.tasks.map((t) => t.name) ?? []);
  for (const t of listBuiltTasks(join(dir, 'formatted_datasets'))) names.add(t);
  return [...names].sort();
}

export function gridCell(grid: EvalGrid | null, model: string, task: string): GridCell {
  if (!grid) throw new TlabError('no eval_grid.json in the experiment folder yet');
  const cell = grid.cells.find((c) => c.model === model && c.task === task);
  if (!cell)
    throw new TlabError(
      `no eval grid cell (${model}, ${task})`,
      `models: ${validChoices(grid.models.map((m) => m.name))}; tasks: ${validChoices(grid.tasks.map((t) => t.name))}`,
    );
  return cell;
}

/** The graded samples of a cell, in log order (empty for a skipped or failed cell). */
export function cellSamples(dir: string, grid: EvalGrid | null, model: string, task: string): GraderLogRow[] {
  const cell = gridCell(grid, model, task);
  if (!cell.log) return [];
  const path = realPathInside(dir, cell.log);
  if (!path)
    throw new TlabError(
      `cell (${model}, ${task}): grader log ${cell.log} is missing or outside the experiment`,
    );
  return readLogRows(path);
}

export interface ModelAnswer {
  model: string;
  prediction: string;
  score: number;
  details: Record<string, unknown>;
  reference: unknown;
}

export interface SampleDetail {
  task: string;
  uid: string;
  /** The example from the task folder, when the folder is inside the experiment. */
  example: TaskExample | null;
  /** Image files relative to the experiment folder (served and embedded from there). */
  images: string[];
  /** The prompt as the grader log recorded it (first model that has the uid). */
  prompt: unknown;
  reference: unknown;
  answers: ModelAnswer[];
}

/** One uid of a task across every model of the grid that graded it. */
export async function sampleDetail(
  dir: string,
  grid: EvalGrid | null,
  task: string,
  uid: string,
): Promise<SampleDetail> {
  const taskDir = taskDirOf(dir, grid, task);
  const example = taskDir ? ((await findExample(taskDir, uid)) ?? null) : null;
  const answers: ModelAnswer[] = [];
  let first: GraderLogRow | undefined;
  for (const c of grid?.cells ?? []) {
    if (c.task !== task || !c.log) continue;
    const path = realPathInside(dir, c.log);
    if (!path) continue;
    const row = readLogRows(path).find((r) => r.uid === uid);
    if (!row) continue;
    first ??= row;
    answers.push({
      model: c.model,
      prediction: row.prediction,
      score: row.score,
      details: row.details,
      reference: row.reference,
    });
  }
  if (!example && !first)
    throw new TlabError(`task '${task}': no example or graded sample with uid '${uid}' in this experiment`);
  const files = example ? example.metadata.images.map((i) => i.file) : (first?.images ?? []);
  const images = taskDir
    ? files.flatMap((f) => {
        const real = realPathInside(taskDir, f);
        return real ? [relative(dir, real)] : [];
      })
    : [];
  return {
    task,
    uid,
    example,
    images,
    prompt: first?.prompt ?? example?.messages.filter((m) => m.role !== 'assistant') ?? null,
    reference: first?.reference ?? example?.answer ?? null,
    answers,
  };
}
