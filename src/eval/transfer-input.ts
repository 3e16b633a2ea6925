/**
 * Reads what the transfer matrix needs from an eval grid folder: eval_grid.json (validated) and the per-sample
 * scores of every done cell from its grader log (grader_logs/<model>/<task>.jsonl: one JSON object per line with
 * at least `uid` and `score`); and a written transfer.json back (for the shift correlation).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { zodIssuesError } from '../data/config.ts';
import { TlabError } from '../util/errors.ts';
import { isJsonObject, readJsonFile } from '../util/json-file.ts';
import { EVAL_GRID_SCHEMA, type EvalGrid } from './grid/schema.ts';
import {
  cellKey,
  type SampleScores,
  TRANSFER_SCHEMA,
  type TransferInput,
  type TransferResult,
} from './transfer.ts';

const ModelSchema = z.object({
  name: z.string().min(1),
  path: z.string().nullable(),
  role: z.enum(['base', 'finetuned']),
  base: z.string().nullable(),
  train_task: z.string().nullable(),
  strategy: z.string().nullable(),
  backend: z.enum(['local', 'openai']),
});

const TaskSchema = z.object({
  name: z.string().min(1),
  path: z.string(),
  split: z.string(),
  grader: z.string(),
  grader_options: z.record(z.string(), z.unknown()),
  n: z.number().int().nonnegative(),
  uids_sha256: z.string(),
});

const CellSchema = z.object({
  model: z.string(),
  task: z.string(),
  status: z.enum(['done', 'skipped', 'error']),
  topline_metric: z.string().nullable(),
  score: z.number().nullable(),
  metrics: z.record(z.string(), z.number()),
  n: z.number().int().nonnegative(),
  reason: z.string().optional(),
  error: z.string().optional(),
  key: z.string(),
  log: z.string().nullable(),
  seconds: z.number(),
  finished_at: z.string(),
});

const GridSchema = z.object({
  schema: z.literal(EVAL_GRID_SCHEMA),
  created_at: z.string(),
  updated_at: z.string(),
  models: z.array(ModelSchema),
  tasks: z.array(TaskSchema),
  cells: z.array(CellSchema),
});

export interface LoadedTransferInput extends TransferInput {
  /** The grid folder (outputs go here by default). */
  gridDir: string;
  gridFile: string;
}

/** The eval_grid.json path for a grid folder or the file itself. */
export function resolveGridFile(path: string): string {
  if (!existsSync(path)) throw new TlabError(`${path}: not found; give a grid folder or its eval_grid.json`);
  if (statSync(path).isDirectory()) {
    const file = join(path, 'eval_grid.json');
    if (!existsSync(file))
      throw new TlabError(`${path}: no eval_grid.json in this folder; run \`tlab eval grid\` first`);
    return file;
  }
  return path;
}

/** Validates an eval grid document, naming the file and field at fault. */
export function parseEvalGrid(value: unknown, file: string): EvalGrid {
  if (Array.isArray(value))
    throw new TlabError(
      `${file}: is a list (the cookbook's eval_grid_results.json form); give eval_grid.json, which names the base models, train tasks and grader logs`,
    );
  if (isJsonObject(value) && typeof value.schema === 'string' && value.schema !== EVAL_GRID_SCHEMA)
    throw new TlabError(
      `${file}: schema: '${value.schema}' is not supported; expected '${EVAL_GRID_SCHEMA}'`,
    );
  const parsed = GridSchema.safeParse(value);
  if (!parsed.success) throw zodIssuesError(file, [], parsed.error);
  const grid = parsed.data as EvalGrid;
  const models = new Set<string>();
  for (const [i, m] of grid.models.entries()) {
    if (models.has(m.name)) throw new TlabError(`${file}: models.${i}.name: '${m.name}' appears twice`);
    models.add(m.name);
  }
  const tasks = new Set<string>();
  for (const [i, t] of grid.tasks.entries()) {
    if (tasks.has(t.name)) throw new TlabError(`${file}: tasks.${i}.name: '${t.name}' appears twice`);
    tasks.add(t.name);
  }
  const seen = new Set<string>();
  for (const [i, c] of grid.cells.entries()) {
    if (!models.has(c.model))
      throw new TlabError(`${file}: cells.${i}.model: '${c.model}' is not one of the grid's models`);
    if (!tasks.has(c.task))
      throw new TlabError(`${file}: cells.${i}.task: '${c.task}' is not one of the grid's tasks`);
    const key = cellKey(c.model, c.task);
    if (seen.has(key)) throw new TlabError(`${file}: cells.${i}: a second cell for (${c.model}, ${c.task})`);
    seen.add(key);
    if (c.status === 'done' && (c.score === null || !Number.isFinite(c.score)))
      throw new TlabError(`${file}: cells.${i}.score: a done cell needs a finite score, got ${c.score}`);
  }
  return grid;
}

/** Per-sample uid and score of a grader log; errors name the file and line. */
export function readGraderLogScores(path: string): SampleScores {
  const text = readFileSync(path, 'utf8');
  const uids: string[] = [];
  const scores: number[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new TlabError(`${where}: not a JSON object (a truncated or corrupt line)`);
    }
    if (!isJsonObject(row)) throw new TlabError(`${where}: expected a JSON object per line`);
    if (typeof row.uid !== 'string' || row.uid === '')
      throw new TlabError(`${where}: uid: expected a non-empty string, got ${JSON.stringify(row.uid)}`);
    if (typeof row.score !== 'number' || !Number.isFinite(row.score))
      throw new TlabError(`${where}: score: expected a finite number, got ${JSON.stringify(row.score)}`);
    uids.push(row.uid);
    scores.push(row.score);
  });
  return { uids, scores: Float64Array.from(scores), source: path };
}

/** Reads a grid (folder or eval_grid.json) and the grader logs of its done cells. */
export function loadTransferInput(path: string): LoadedTransferInput {
  const gridFile = resolveGridFile(path);
  const gridDir = dirname(gridFile);
  const grid = parseEvalGrid(readJsonFile(gridFile), gridFile);
  const samples = new Map<string, SampleScores>();
  const missingSamples = new Map<string, string>();
  for (const c of grid.cells) {
    if (c.status !== 'done') continue;
    const key = cellKey(c.model, c.task);
    if (c.log === null) {
      missingSamples.set(key, 'the cell names no grader log');
      continue;
    }
    const file = join(gridDir, c.log);
    if (!existsSync(file)) {
      missingSamples.set(key, `grader log ${file} not found`);
      continue;
    }
    samples.set(key, readGraderLogScores(file));
  }
  return { grid, samples, missingSamples, gridDir, gridFile };
}

const StatSchema = z.object({ value: z.number().nullable() });
const TransferFileSchema = z.object({
  schema: z.literal(TRANSFER_SCHEMA),
  models: z.array(
    z.object({
      name: z.string(),
      role: z.enum(['base', 'finetuned']),
      strategy: z.string().nullable(),
    }),
  ),
  cells: z.array(
    z.object({
      model: z.string(),
      task: z.string(),
      train_task: z.string().nullable(),
      transfer_index: StatSchema,
    }),
  ),
});

/** A transfer.json written by `tlab eval transfer` (validated for the fields the shift correlation reads). */
export function readTransferResult(path: string): TransferResult {
  const value = readJsonFile(path);
  if (isJsonObject(value) && typeof value.schema === 'string' && value.schema !== TRANSFER_SCHEMA)
    throw new TlabError(`${path}: schema: '${value.schema}' is not supported; expected '${TRANSFER_SCHEMA}'`);
  const parsed = TransferFileSchema.safeParse(value);
  if (!parsed.success) throw zodIssuesError(path, [], parsed.error);
  return value as TransferResult;
}
