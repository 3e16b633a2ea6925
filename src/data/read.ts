/**
 * Reading built tasks: what the trainer, the eval grid and the metrics use instead of parsing files.
 *
 *   const task = openTask('experiments/x/formatted_datasets/task1');
 *   for await (const ex of readTaskSplit(task.dir, 'train')) ...   // streaming, one line at a time
 *   const test = await loadTaskSplit(task.dir, 'test');             // everything in memory
 *   task.grader; task.labels; task.labelIndex(ex);                   // eval and metrics
 *   task.imagePath(ex.metadata.images[0].file);                      // absolute path of an image
 */
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { TlabError, validChoices } from '../util/errors.ts';
import { TASK_FORMAT, type TaskExample, type TaskManifest } from './task-format.ts';
import { parseTaskRow } from './task-rows.ts';

export interface OpenedTask {
  dir: string;
  name: string;
  manifest: TaskManifest;
  splits: string[];
  grader: string | undefined;
  labels: string[] | undefined;
  /** Index of the example's label in `labels` (-1 when it has none). */
  labelIndex(example: TaskExample): number;
  /** Absolute path of a file named in an example (image parts are relative to the task folder). */
  imagePath(relative: string): string;
}

export function readTaskManifest(taskDir: string): TaskManifest {
  const path = join(taskDir, 'manifest.json');
  if (!existsSync(path))
    throw new TlabError(
      `${taskDir}: not a built task (no manifest.json)`,
      'build it with: tlab data build <config.yaml>',
    );
  let manifest: TaskManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as TaskManifest;
  } catch (error) {
    throw new TlabError(`${path}: not valid JSON: ${(error as Error).message}`);
  }
  if (manifest.format !== TASK_FORMAT)
    throw new TlabError(
      `${path}: format '${manifest.format}' is not '${TASK_FORMAT}'`,
      'rebuild the task with this version',
    );
  return manifest;
}

export function openTask(taskDir: string): OpenedTask {
  const dir = resolve(taskDir);
  const manifest = readTaskManifest(dir);
  const labels = manifest.labels;
  const index = new Map((labels ?? []).map((l, i) => [l, i]));
  return {
    dir,
    name: manifest.task,
    manifest,
    splits: Object.keys(manifest.splits),
    grader: manifest.grader,
    labels,
    labelIndex: (ex) => (ex.label === undefined ? -1 : (index.get(ex.label) ?? -1)),
    imagePath: (relative) => join(dir, relative),
  };
}

/** Resolves a task given as a folder, or as a name under a formatted_datasets root. */
export function resolveTaskDir(task: string, root = 'formatted_datasets'): string {
  if (existsSync(join(task, 'manifest.json'))) return resolve(task);
  const under = join(root, task);
  if (existsSync(join(under, 'manifest.json'))) return resolve(under);
  const built = listBuiltTasks(root);
  throw new TlabError(
    `task '${task}': no built task at ${under} (nor a task folder '${task}')`,
    built.length
      ? `built tasks in ${root}: ${validChoices(built)}`
      : `build it first: tlab data build <config.yaml>`,
  );
}

/** Names of the built tasks under a formatted_datasets root. */
export function listBuiltTasks(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => !d.startsWith('.') && existsSync(join(root, d, 'manifest.json')))
    .sort();
}

/** Streams the examples of one split, in file order; a row that is not a valid example is an error naming its line. */
export async function* readTaskSplit(taskDir: string, split: string): AsyncGenerator<TaskExample> {
  const manifest = readTaskManifest(taskDir);
  const entry = manifest.splits[split];
  if (!entry)
    throw new TlabError(
      `${taskDir}: no split '${split}'`,
      `splits: ${validChoices(Object.keys(manifest.splits))}`,
    );
  const path = join(taskDir, entry.file);
  const lines = createInterface({
    input: createReadStream(path, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(n === 1 ? line.replace(/^\uFEFF/, '') : line);
    } catch (error) {
      throw new TlabError(`${path}:${n}: not valid JSON: ${(error as Error).message}`);
    }
    yield parseTaskRow(value, path, n);
  }
}

/** All examples of one split in memory. */
export async function loadTaskSplit(taskDir: string, split: string): Promise<TaskExample[]> {
  const out: TaskExample[] = [];
  for await (const ex of readTaskSplit(taskDir, split)) out.push(ex);
  return out;
}

/** The example with this uid in any split (a linear scan; tasks are read rarely this way). */
export async function findExample(taskDir: string, uid: string): Promise<TaskExample | undefined> {
  const manifest = readTaskManifest(taskDir);
  for (const split of Object.keys(manifest.splits))
    for await (const ex of readTaskSplit(taskDir, split)) if (ex.uid === uid) return ex;
  return undefined;
}
