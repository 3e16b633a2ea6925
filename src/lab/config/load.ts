/**
 * Reads an experiment file in any of the layouts users arrive with and validates it as one ExperimentConfig:
 * transferlab's own (`tasks:`, `models:`, ...), or the llama-cookbook transferability tool's `config.yaml` (tasks as
 * top-level keys beside `finetuning:` and `evals:`, the base model in `finetuning.model_path`), which runs
 * unchanged: its torchtune-only keys are accepted and reported as used by the external executor.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import YAML from 'yaml';
import { TlabError } from '../../util/errors.ts';
import { isJsonObject, type JsonObject } from '../../util/json-file.ts';
import { zodIssuesError } from '../../util/zod-errors.ts';
import { type ExperimentConfig, ExperimentSchema } from './schema.ts';

export interface LoadedExperiment {
  config: ExperimentConfig;
  /** The file it came from (errors name it). */
  file: string;
  /** Relative paths in the config resolve against this folder. */
  baseDir: string;
  /** Layout the file was written in. */
  layout: 'transferlab' | 'llama-cookbook';
  /** Things the user should know (keys used only by the external executor, ...). */
  notes: string[];
}

const OWN_KEYS = new Set(Object.keys(ExperimentSchema.shape));
/** The cookbook's torchtune / vLLM wiring, meaningful only when an external trainer or server runs the study. */
const EXTERNAL_FINETUNING_KEYS = [
  'fft_torchtune_config',
  'lora_torchtune_config',
  'ngpu',
  'distributed',
  'tokenizer_path',
];

function isCookbookLayout(doc: JsonObject): boolean {
  if ('tasks' in doc || 'models' in doc) return false;
  return Object.entries(doc).some(([k, v]) => !OWN_KEYS.has(k) && isJsonObject(v) && 'dataset' in v);
}

/** The cookbook layout as an experiment document (still to be validated). */
export function fromCookbook(doc: JsonObject, file: string, notes: string[]): JsonObject {
  const tasks: JsonObject = {};
  const rest: JsonObject = {};
  for (const [k, v] of Object.entries(doc)) {
    if (OWN_KEYS.has(k)) rest[k] = v;
    else if (isJsonObject(v) && 'dataset' in v) tasks[k] = v;
    else
      throw new TlabError(
        `${file}: ${k}: not a task (no dataset:) and not an experiment field; valid fields: ${[...OWN_KEYS].join(', ')}`,
      );
  }
  const finetuning = isJsonObject(rest.finetuning) ? { ...rest.finetuning } : {};
  const modelPath = finetuning.model_path;
  if (typeof modelPath !== 'string')
    throw new TlabError(`${file}: finetuning.model_path: required in this layout (the base model folder)`);
  for (const key of EXTERNAL_FINETUNING_KEYS)
    if (key in finetuning)
      notes.push(`finetuning.${key}: used by the external executor (torchtune); in-process runs ignore it`);
  const evals = isJsonObject(rest.evals) ? rest.evals : {};
  if ('model_server_args' in evals)
    notes.push(
      'evals.model_server_args: used by the external executor (a vLLM server); in-process evaluation ignores it',
    );
  const base = basename(resolve(dirname(file), modelPath)).replace(/[^A-Za-z0-9_.-]/g, '_') || 'base';
  return {
    name: rest.name ?? basename(dirname(resolve(file))).replace(/[^A-Za-z0-9_.-]/g, '_'),
    ...rest,
    tasks,
    models: { [base]: { path: modelPath } },
    finetuning,
  };
}

const slugValue = (v: unknown) =>
  String(typeof v === 'object' ? JSON.stringify(v) : v).replace(/[^A-Za-z0-9.-]+/g, '_');

/**
 * Expands task axes: `tasks.<t>.axes: {<field path>: [values]}` (e.g. `generator.questions_per_image: [1, 3]`)
 * becomes one task per combination, named `<t>__<last path segment>-<value>` with the fields set, so any task or
 * generator parameter is a grid axis (data ablations: unique images vs questions per image).
 */
export function expandTaskAxes(tasks: unknown, file: string): unknown {
  if (!isJsonObject(tasks)) return tasks;
  const out: JsonObject = {};
  for (const [name, task] of Object.entries(tasks)) {
    if (!isJsonObject(task) || task.axes === undefined) {
      out[name] = task;
      continue;
    }
    const { axes, ...rest } = task;
    if (!isJsonObject(axes) || Object.keys(axes).length === 0)
      throw new TlabError(
        `${file}: tasks.${name}.axes: expected a mapping of field paths to lists of values`,
      );
    let combos: { name: string; task: JsonObject }[] = [{ name, task: rest }];
    for (const [path, values] of Object.entries(axes)) {
      if (!Array.isArray(values) || values.length === 0)
        throw new TlabError(`${file}: tasks.${name}.axes.${path}: expected a non-empty list of values`);
      const keys = path.split('.');
      combos = combos.flatMap((c) =>
        values.map((v) => {
          const copy = structuredClone(c.task);
          let at: JsonObject = copy;
          for (const k of keys.slice(0, -1)) {
            if (at[k] === undefined) at[k] = {};
            if (!isJsonObject(at[k]))
              throw new TlabError(`${file}: tasks.${name}.axes.${path}: '${k}' is not a mapping in the task`);
            at = at[k] as JsonObject;
          }
          at[keys[keys.length - 1]] = v;
          return { name: `${c.name}__${keys[keys.length - 1]}-${slugValue(v)}`, task: copy };
        }),
      );
    }
    for (const c of combos) {
      if (c.name in out || c.name in tasks)
        throw new TlabError(`${file}: tasks.${name}.axes: the task name '${c.name}' is taken`);
      out[c.name] = c.task;
    }
  }
  return out;
}

/** The document with task axes expanded, and lists of task names naming an expanded task replaced by its tasks. */
function withExpandedTasks(raw: JsonObject, file: string): JsonObject {
  const tasks = expandTaskAxes(raw.tasks, file);
  if (!isJsonObject(tasks) || !isJsonObject(raw.tasks)) return raw;
  const expanded = new Map<string, string[]>();
  for (const name of Object.keys(raw.tasks))
    if (!(name in tasks))
      expanded.set(
        name,
        Object.keys(tasks).filter((t) => t.startsWith(`${name}__`)),
      );
  if (expanded.size === 0) return { ...raw, tasks };
  const names = (list: unknown) =>
    Array.isArray(list) ? list.flatMap((t) => expanded.get(t as string) ?? [t]) : list;
  const section = (key: string, field: string): JsonObject | undefined => {
    const v = raw[key];
    return isJsonObject(v) && field in v ? { ...v, [field]: names(v[field]) } : (v as JsonObject | undefined);
  };
  const tokenizers = isJsonObject(raw.tokenizers)
    ? Object.fromEntries(
        Object.entries(raw.tokenizers).map(([k, v]) => [
          k,
          isJsonObject(v) && 'from_tasks' in v ? { ...v, from_tasks: names(v.from_tasks) } : v,
        ]),
      )
    : raw.tokenizers;
  return {
    ...raw,
    tasks,
    ...(raw.finetuning !== undefined ? { finetuning: section('finetuning', 'tasks') } : {}),
    ...(raw.evals !== undefined ? { evals: section('evals', 'tasks') } : {}),
    ...(raw.metrics !== undefined ? { metrics: section('metrics', 'target_tasks') } : {}),
    ...(raw.tokenizers !== undefined ? { tokenizers } : {}),
  };
}

/** Validates a parsed document (either layout). */
export function parseExperiment(
  document: unknown,
  file: string,
  baseDir = dirname(resolve(file)),
): LoadedExperiment {
  if (!isJsonObject(document))
    throw new TlabError(`${file}: expected a mapping of experiment fields at the top level`);
  const notes: string[] = [];
  const layout = isCookbookLayout(document) ? 'llama-cookbook' : 'transferlab';
  const raw = layout === 'llama-cookbook' ? fromCookbook(document, file, notes) : document;
  const doc = withExpandedTasks(raw, file);
  const parsed = ExperimentSchema.safeParse(doc);
  if (!parsed.success) throw zodIssuesError(file, [], parsed.error);
  return { config: parsed.data, file, baseDir, layout, notes };
}

/** Reads and validates an experiment file (YAML or JSON). */
export function loadExperiment(file: string): LoadedExperiment {
  if (!existsSync(file)) throw new TlabError(`${file}: experiment file not found`);
  let document: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    document = extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text, { merge: true });
  } catch (error) {
    throw new TlabError(
      `${file}: not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'} (${(error as Error).message.split('\n')[0]})`,
    );
  }
  return parseExperiment(document, file);
}
