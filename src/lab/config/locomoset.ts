/**
 * `tlab import locomoset`: a LoCoMoSeT top-level config (models × dataset_names × random_states, metrics,
 * n_samples, training_args, dataset_args) as the equivalent experiment YAML. LoCoMoSeT studies image
 * classifiers; its datasets become image-classification tasks (image and label columns), its seeds the
 * fine-tuning and estimator seeds. What has no counterpart (W&B, caches, Baskerville job settings) is reported.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { TlabError } from '../../util/errors.ts';
import { isJsonObject, type JsonObject } from '../../util/json-file.ts';

/** LoCoMoSeT metric names → this project's estimators (null: none here). */
const METRIC_NAMES: Record<string, string | null> = {
  logme: 'logme',
  nce: 'nce',
  leep: 'leep',
  parc: 'parc',
  hscore: 'hscore',
  'h-score': 'hscore',
  knn: 'knn',
  renggli: null,
  n_pars: null,
};

const slug = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'x';

function list(value: unknown, key: string, file: string): unknown[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value;
  if (typeof value === 'string' || typeof value === 'number') return [value];
  throw new TlabError(`${file}: ${key}: expected a list (or one value), got ${typeof value}`);
}

export function importLocomoset(file: string): { yaml: string; notes: string[] } {
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new TlabError(`${file}: cannot read (${(error as Error).message.split('\n')[0]})`);
  }
  if (!isJsonObject(doc)) throw new TlabError(`${file}: expected a mapping at the top level`);
  const notes: string[] = [];
  const models = list(doc.models ?? doc.model_name, 'models', file).map(String);
  const datasets = list(doc.dataset_names ?? doc.dataset_name, 'dataset_names', file).map(String);
  if (!models.length) throw new TlabError(`${file}: models: required (a list of model names or folders)`);
  if (!datasets.length) throw new TlabError(`${file}: dataset_names: required (a list of datasets)`);
  const seeds = list(doc.random_states ?? doc.random_state, 'random_states', file).map(Number);
  if (seeds.some((s) => !Number.isInteger(s) || s < 0))
    throw new TlabError(`${file}: random_states: expected non-negative integers`);
  const nSamples = list(doc.n_samples, 'n_samples', file).map((n) =>
    n === null || n === 'all' ? 'all' : Number(n),
  );

  const dataArgs = isJsonObject(doc.dataset_args) ? doc.dataset_args : {};
  const tasks: JsonObject = {};
  for (const d of datasets) {
    const task: JsonObject = {
      dataset: d,
      image_column: 'image',
      label_column: 'label',
      user_prompt: 'What is shown in the image?',
      assistant_text_column: 'label',
    };
    const val = Number(dataArgs.val_size ?? 0);
    const test = Number(dataArgs.test_size ?? 0);
    if (val > 0 || test > 0)
      task.resplit = {
        train: 1 - val - test,
        ...(val ? { validation: val } : {}),
        ...(test ? { test } : {}),
      };
    tasks[slug(d.split('/').pop()!)] = task;
  }
  const zoo: JsonObject = {};
  for (const m of models) zoo[slug(m.split('/').pop()!)] = { path: m };
  notes.push(
    `models: ${models.join(', ')} are written as paths; each must be a local Hugging Face model folder (no downloads here)`,
  );

  const metrics = list(doc.metrics, 'metrics', file).map(String);
  const estimators: string[] = [];
  for (const m of metrics) {
    const mapped = METRIC_NAMES[m.toLowerCase()];
    if (mapped) estimators.push(mapped);
    else notes.push(`metrics: '${m}' has no estimator here and is left out`);
  }

  const t = isJsonObject(doc.training_args) ? doc.training_args : null;
  const training: JsonObject = {};
  if (t) {
    if (t.num_train_epochs !== undefined) training.epochs = Number(t.num_train_epochs);
    if (t.learning_rate !== undefined) training.lr = Number(t.learning_rate);
    if (t.per_device_train_batch_size !== undefined)
      training.batch_size = Number(t.per_device_train_batch_size);
    if (t.warmup_steps !== undefined) training.warmup_steps = Number(t.warmup_steps);
    if (t.eval_steps !== undefined) training.eval_every = Number(t.eval_steps);
    if (t.max_steps !== undefined && Number(t.max_steps) > 0) training.max_steps = Number(t.max_steps);
  }
  if (training.epochs === undefined && training.max_steps === undefined) training.epochs = 1;

  for (const key of [
    'wandb_args',
    'use_wandb',
    'caches',
    'use_bask',
    'bask',
    'slurm_template_name',
    'slurm_template_path',
    'config_dir',
    'config_gen_dtime',
    'local_save',
    'inference_args',
    'metric_kwargs',
    'keep_labels',
  ])
    if (key in doc) notes.push(`${key}: has no counterpart in an experiment YAML and is left out`);
  if ('use_bask' in doc || 'bask' in doc)
    notes.push('for a cluster, run the experiment with the SLURM executor');

  const experiment: JsonObject = {
    name: slug(String(doc.run_name ?? doc.config_gen_dtime ?? 'locomoset')),
    ...(typeof doc.save_dir === 'string' ? { out: doc.save_dir } : {}),
    tasks,
    models: zoo,
    finetuning: {
      tasks: Object.keys(tasks),
      seeds: seeds.length ? seeds : [0],
      training,
    },
    ...(estimators.length
      ? {
          metrics: {
            estimators,
            target_tasks: Object.keys(tasks),
            ...(nSamples.length ? { n_samples: nSamples } : {}),
            ...(seeds.length ? { seeds } : {}),
          },
        }
      : {}),
  };
  const header = `# Imported from the LoCoMoSeT config ${file} by tlab import locomoset.\n`;
  return { yaml: header + YAML.stringify(experiment), notes };
}
