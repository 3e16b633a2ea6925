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
  const doc = layout === 'llama-cookbook' ? fromCookbook(document, file, notes) : document;
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
    document = extname(file) === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (error) {
    throw new TlabError(
      `${file}: not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'} (${(error as Error).message.split('\n')[0]})`,
    );
  }
  return parseExperiment(document, file);
}
