/**
 * Runs the eval grid: every model × every task, each cell keyed by a content hash of its inputs (model files,
 * task split, evaluated uids, grader and decoding settings, backend). A cell already done for the same key is
 * kept; a changed input redoes exactly the cells it affects; an error in one cell is recorded there and the grid
 * goes on. Models are opened one at a time (in-process, or a client of an OpenAI-compatible server) and only when
 * one of their cells needs work.
 */
import { join } from 'node:path';
import { canonicalJson } from '../../data/canonical-json.ts';
import { sha256Hex } from '../../data/hash.ts';
import { TlabError } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';
import { createGrader, type Grader } from '../graders/index.ts';
import { ClassifierBackend, classifierKindOf } from '../inference/classifier-backend.ts';
import { LocalBackend } from '../inference/local-backend.ts';
import { OpenAiBackend } from '../inference/openai-backend.ts';
import type { InferenceBackend } from '../inference/types.ts';
import { evaluateCell } from './cell.ts';
import type { ResolvedGridConfig, ResolvedModel, ResolvedTask } from './config.ts';
import { failureRows, writeFailures } from './failures.ts';
import { folderFingerprint, HashCache } from './fingerprint.ts';
import { loadTaskSamples, type TaskSamples } from './samples.ts';
import { EVAL_GRID_SCHEMA, type EvalGrid, type GridCell, type GridModel, type GridTask } from './schema.ts';
import { GridStore } from './store.ts';

/** Bump when prompts, grading or the cell layout change in a way that makes old cells incomparable. */
const CELL_VERSION = 1;

export interface GridRunOptions {
  /** Redo every cell, whatever is on disk. */
  fresh?: boolean;
  /** Only these models / tasks (the others keep their cells on disk and stay in eval_grid.json). */
  models?: readonly string[];
  tasks?: readonly string[];
  /** Opens a model's backend; default: in-process for a folder, the OpenAI client for a server. */
  openBackend?: (model: ResolvedModel) => Promise<InferenceBackend>;
  /** No progress output. */
  quiet?: boolean;
  /** Called after each cell is written. */
  onCell?: (cell: GridCell) => void;
  /**
   * Write eval_grid.json and eval_grid_results.json (default true). Runs that evaluate one model each into a shared
   * folder leave them to a final pass, which rebuilds them from every cell.
   */
  gridFiles?: boolean;
  /** Evaluate missing cells (default true); false only rebuilds the grid files from the cells on disk. */
  evaluate?: boolean;
}

export async function openDefaultBackend(model: ResolvedModel): Promise<InferenceBackend> {
  if (model.server) {
    return OpenAiBackend.connect({
      baseUrl: model.server.url,
      model: model.server.model,
      apiKey: model.server.apiKey,
      concurrency: model.server.concurrency,
      timeoutMs: model.server.timeoutMs,
      maxRetries: model.server.maxRetries,
      ...(model.dir ? { tokenizer: model.dir } : {}),
    });
  }
  if (!model.dir) throw new Error(`unreachable: model ${model.name} has neither a folder nor a server`);
  // A classifier folder answers with its predicted label's name.
  if (classifierKindOf(model.dir)) return ClassifierBackend.open(model.dir, { name: model.name });
  return LocalBackend.open(model.dir, { name: model.name });
}

async function modelFingerprint(model: ResolvedModel, hashes: HashCache): Promise<unknown> {
  if (model.server)
    return {
      server: model.server.url,
      model: model.server.model,
      revision: model.server.revision ?? null,
      tokenizer: model.dir ? await folderFingerprint(model.dir, hashes) : null,
    };
  return { folder: await folderFingerprint(model.dir!, hashes) };
}

function gridModel(m: ResolvedModel): GridModel {
  return {
    name: m.name,
    path: m.dir,
    role: m.trainTask || m.base ? 'finetuned' : 'base',
    base: m.base,
    train_task: m.trainTask,
    strategy: m.strategy,
    backend: m.server ? 'openai' : 'local',
  };
}

function gridTask(t: ResolvedTask, s: TaskSamples): GridTask {
  return {
    name: t.name,
    path: t.dir,
    split: t.split,
    grader: t.grader,
    grader_options: t.graderOptions,
    n: s.samples.length,
    uids_sha256: s.uidsSha256,
  };
}

function errorCell(model: string, task: string, key: string, error: unknown, seconds: number): GridCell {
  const message =
    error instanceof TlabError
      ? [error.message, error.details].filter(Boolean).join('\n')
      : error instanceof Error
        ? `${error.message}\n${error.stack ?? ''}`
        : String(error);
  return {
    model,
    task,
    key,
    status: 'error',
    topline_metric: null,
    score: null,
    metrics: {},
    ci: null,
    n: 0,
    error: message,
    log: null,
    seconds,
    finished_at: new Date().toISOString(),
  };
}

function pick<T extends { name: string }>(
  all: readonly T[],
  names: readonly string[] | undefined,
  what: string,
): T[] {
  if (!names?.length) return [...all];
  for (const n of names)
    if (!all.some((x) => x.name === n))
      throw new TlabError(
        `--${what}: '${n}' is not in the grid; valid: ${all.map((x) => x.name).join(', ')}`,
      );
  return all.filter((x) => names.includes(x.name));
}

/** Runs what is missing and returns the grid as written to eval_grid.json. */
export async function runEvalGrid(
  config: ResolvedGridConfig,
  options: GridRunOptions = {},
): Promise<EvalGrid> {
  const store = new GridStore(config.out);
  const hashes = new HashCache(join(config.out, '.hash-cache.json'));
  const graders = new Map<string, Grader>(
    config.tasks.map((t) => [
      t.name,
      createGrader(t.grader, t.graderOptions, `${config.file}: tasks.${t.name}`),
    ]),
  );
  const samples = new Map<string, TaskSamples>();
  for (const t of config.tasks)
    samples.set(
      t.name,
      await loadTaskSamples(t, config.nbEvalSamples, config.seed, `${config.file}: tasks.${t.name}`),
    );

  // Keys first (cheap with the hash cache), so the progress total counts only the work left.
  const keys = new Map<string, string>();
  for (const m of config.models) {
    const fingerprint = await modelFingerprint(m, hashes);
    for (const t of config.tasks) {
      const s = samples.get(t.name)!;
      const key = sha256Hex(
        canonicalJson({
          v: CELL_VERSION,
          model: fingerprint,
          task: { dir: t.dir, split: t.split, uids: s.uidsSha256 },
          grader: { name: t.grader, options: t.graderOptions },
          params: t.params,
          choices: { field: t.choicesField, gold: t.goldField, delimiter: t.choiceDelimiter },
          reference: t.referenceField,
          backend: m.server ? 'openai' : 'local',
        }),
      );
      keys.set(`${m.name}\u0000${t.name}`, key);
    }
  }
  hashes.save();

  const selectedModels = pick(config.models, options.models, 'model');
  const selectedTasks = pick(config.tasks, options.tasks, 'task');
  const needs = (m: ResolvedModel, t: ResolvedTask): boolean => {
    if (options.fresh) return true;
    const cell = store.readCell(m.name, t.name);
    return !cell || cell.key !== keys.get(`${m.name}\u0000${t.name}`) || cell.status === 'error';
  };
  const work = selectedModels.map((m) => ({ m, tasks: selectedTasks.filter((t) => needs(m, t)) }));
  const total = work.reduce(
    (n, w) => n + w.tasks.reduce((k, t) => k + samples.get(t.name)!.samples.length, 0),
    0,
  );
  const progress = new Progress({
    total,
    label: 'eval grid',
    unit: 'sample',
    silent: options.quiet || total === 0,
  });

  const createdAt = store.createdAt() ?? new Date().toISOString();
  const assemble = (): [GridModel[], GridTask[], GridCell[]] => [
    config.models.map(gridModel),
    config.tasks.map((t) => gridTask(t, samples.get(t.name)!)),
    config.models.flatMap((m) =>
      config.tasks.flatMap((t) => {
        const cell = store.readCell(m.name, t.name);
        return cell && cell.key === keys.get(`${m.name}\u0000${t.name}`) ? [cell] : [];
      }),
    ),
  ];
  const writeGrid = (): EvalGrid => {
    const [models, tasks, cells] = assemble();
    if (options.gridFiles === false)
      return {
        schema: EVAL_GRID_SCHEMA,
        created_at: createdAt,
        updated_at: new Date().toISOString(),
        models,
        tasks,
        cells,
      };
    return store.writeGrid(models, tasks, cells, createdAt);
  };
  if (options.evaluate === false) return writeGrid();

  for (const { m, tasks } of work) {
    if (tasks.length === 0) continue;
    let backend: InferenceBackend | null = null;
    try {
      backend = await (options.openBackend ?? openDefaultBackend)(m);
    } catch (error) {
      // The model cannot be opened: every cell it owes records why, and the grid goes on.
      for (const t of tasks) {
        const cell = errorCell(m.name, t.name, keys.get(`${m.name}\u0000${t.name}`)!, error, 0);
        store.writeCell(cell);
        options.onCell?.(cell);
        progress.tick(samples.get(t.name)!.samples.length, `${m.name} failed to open`);
      }
      writeGrid();
      continue;
    }
    try {
      for (const t of tasks) {
        const key = keys.get(`${m.name}\u0000${t.name}`)!;
        const t0 = performance.now();
        const s = samples.get(t.name)!;
        let finished = 0;
        let cell: GridCell;
        try {
          cell = await evaluateCell({
            backend,
            model: m.name,
            task: t,
            samples: s,
            grader: graders.get(t.name)!,
            key,
            store,
            batchSize: config.batchSize,
            bootstrap: config.bootstrap,
            seed: config.seed,
            onSamples: (n) => {
              finished += n;
              progress.tick(n, `${m.name} × ${t.name}`);
            },
          });
          if (cell.status === 'skipped')
            progress.tick(s.samples.length - finished, `${m.name} × ${t.name} skipped`);
        } catch (error) {
          cell = errorCell(m.name, t.name, key, error, (performance.now() - t0) / 1000);
          progress.tick(s.samples.length - finished, `${m.name} × ${t.name} failed`);
        }
        if (cell.status === 'done' && cell.log)
          writeFailures(
            config.out,
            failureRows(m.name, t.name, t.dir, store.readLog(cell.log)),
            m.name,
            t.name,
          );
        store.writeCell(cell);
        options.onCell?.(cell);
        writeGrid();
      }
    } finally {
      await backend.close();
    }
  }
  progress.finish();
  return writeGrid();
}
