/**
 * The eval grid's config: models (base models, fine-tuned outputs, OpenAI-compatible servers) × tasks (built
 * task folders, each with its grader), decoding settings and the evaluation subset. Parsed from YAML/JSON by
 * `tlab eval grid` and built in code by the experiment runner; `resolveGridConfig` turns it into absolute,
 * checked settings (task splits exist, checkpoints found) before anything runs.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { readTaskManifest } from '../../data/read.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { zodIssuesError } from '../../util/zod-errors.ts';
import type { DecodingParams, ResponseFormat } from '../inference/types.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
const name = z.string().regex(NAME, 'names may use letters, digits and _ . + - (they become folder names)');

const ServerSchema = z
  .object({
    /** The server root, e.g. http://127.0.0.1:8000 (with or without /v1). */
    url: z.string().url(),
    /** The served model id; default the model's name. */
    model: z.string().min(1).optional(),
    /** Environment variable holding the API key (never the key itself in a config file). */
    api_key_env: z.string().min(1).optional(),
    /** Concurrent requests; default 8. */
    concurrency: z.int().min(1).max(1024).optional(),
    timeout_s: z.number().positive().optional(),
    max_retries: z.int().min(0).max(20).optional(),
    /** Changes the cells' cache key when the server's weights change behind the same URL and name. */
    revision: z.string().min(1).optional(),
  })
  .strict();

export const GridModelSchema = z
  .object({
    name: name.optional(),
    /**
     * A model folder, or a folder of checkpoint folders (epoch_N/, step_N/ or step-N/, each a model folder);
     * for a server, the model folder whose tokenizer renders log-likelihood contexts (optional).
     */
    path: z.string().min(1).optional(),
    /** The base model's name in this grid, for a fine-tuned model. */
    base: name.optional(),
    /** The task the model was fine-tuned on. */
    train_task: name.optional(),
    strategy: z.string().min(1).optional(),
    /** Evaluate through an OpenAI-compatible server instead of in-process. */
    server: ServerSchema.optional(),
  })
  .strict();

const ResponseFormatSchema = z.union([
  z.enum(['text', 'json_object']),
  z
    .object({ json_schema: z.record(z.string(), z.unknown()), name: z.string().min(1).default('answer') })
    .strict(),
]);

const InferenceSchema = z
  .object({
    max_tokens: z.int().min(1).optional(),
    /** The llama-cookbook's name for max_tokens. */
    max_completion_tokens: z.int().min(1).optional(),
    temperature: z.number().min(0).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    top_k: z.int().min(0).optional(),
    seed: z.int().optional(),
    stop: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  })
  .strict();

export const GridTaskSchema = z
  .object({
    name: name.optional(),
    /** A task folder built by `tlab data build`. */
    path: z.string().min(1),
    /** Default: test, else validation, else the only split. */
    split: z.string().min(1).optional(),
    /** Default: the task's grader (manifest.json), else exact_match. */
    grader: z.string().min(1).optional(),
    grader_options: z.record(z.string(), z.unknown()).optional(),
    response_format: ResponseFormatSchema.optional(),
    /** Per-task decoding overrides. */
    inference: InferenceSchema.optional(),
    /** A metadata field holding the reference (a string or a list of acceptable answers); default the answer. */
    reference_field: z.string().min(1).optional(),
    /** A metadata field holding the options of a multiple-choice question (a list of strings). */
    choices_field: z.string().min(1).optional(),
    /** A metadata field holding the right option's index; default: the reference's position among the options. */
    gold_field: z.string().min(1).optional(),
    /** Text between the prompt and each option when scoring options by log-likelihood; default '' (chat). */
    choice_delimiter: z.string().optional(),
  })
  .strict();

const namedList = <T extends z.ZodType>(item: T) =>
  z.union([z.array(item).min(1), z.record(name, item).refine((r) => Object.keys(r).length > 0, 'empty')]);

export const EvalGridConfigSchema = z
  .object({
    /** Output folder (relative to the config file); `--out` overrides it. */
    out: z.string().min(1).optional(),
    models: namedList(GridModelSchema),
    tasks: namedList(GridTaskSchema),
    /** Samples per task (the same seeded subset for every model); null = all. */
    nb_eval_samples: z.int().min(1).nullable().optional(),
    /** -1 = the latest checkpoint of a checkpoint folder, N = epoch_N / step_N. */
    checkpoint_to_eval: z.int().min(-1).optional(),
    seed: z.int().optional(),
    /** Requests per backend call (and per partial-results checkpoint). */
    batch_size: z.int().min(1).max(4096).optional(),
    inference: InferenceSchema.optional(),
    /** Bootstrap resamples for each cell's confidence interval. */
    bootstrap: z.int().min(0).max(100_000).optional(),
  })
  .strict();

export type EvalGridConfigInput = z.input<typeof EvalGridConfigSchema>;

export interface ResolvedModel {
  name: string;
  /** The model folder to load (the chosen checkpoint), or null for a server without a local folder. */
  dir: string | null;
  base: string | null;
  trainTask: string | null;
  strategy: string | null;
  server: {
    url: string;
    model: string;
    apiKey: string | undefined;
    concurrency: number;
    timeoutMs: number | undefined;
    maxRetries: number | undefined;
    revision: string | undefined;
  } | null;
}

export interface ResolvedTask {
  name: string;
  dir: string;
  split: string;
  grader: string;
  graderOptions: Record<string, unknown>;
  params: DecodingParams;
  referenceField: string | null;
  choicesField: string | null;
  goldField: string | null;
  choiceDelimiter: string;
}

export interface ResolvedGridConfig {
  /** Where the config came from (errors name it). */
  file: string;
  out: string;
  models: ResolvedModel[];
  tasks: ResolvedTask[];
  nbEvalSamples: number | null;
  seed: number;
  batchSize: number;
  bootstrap: number;
}

const DEFAULT_PARAMS: DecodingParams = {
  maxTokens: 64,
  temperature: 0,
  topP: 1,
  topK: 0,
  seed: 0,
  stop: [],
};

function decoding(base: DecodingParams, over: z.infer<typeof InferenceSchema> | undefined): DecodingParams {
  if (!over) return base;
  return {
    ...base,
    maxTokens: over.max_tokens ?? over.max_completion_tokens ?? base.maxTokens,
    temperature: over.temperature ?? base.temperature,
    topP: over.top_p ?? base.topP,
    topK: over.top_k ?? base.topK,
    seed: over.seed ?? base.seed,
    stop: over.stop === undefined ? base.stop : [over.stop].flat(),
  };
}

function responseFormat(value: z.infer<typeof ResponseFormatSchema> | undefined): ResponseFormat | undefined {
  if (value === undefined || value === 'text') return undefined;
  if (value === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', name: value.name, schema: value.json_schema };
}

function entries<T extends { name?: string }>(
  value: T[] | Record<string, T>,
  what: string,
  fallback: (item: T, i: number) => string,
  file: string,
): (T & { name: string })[] {
  const list = Array.isArray(value)
    ? value.map((item, i) => ({ ...item, name: item.name ?? fallback(item, i) }))
    : Object.entries(value).map(([key, item]) => {
        if (item.name !== undefined && item.name !== key)
          throw new TlabError(`${file}: ${what}.${key}.name: '${item.name}' differs from its key '${key}'`);
        return { ...item, name: key };
      });
  const seen = new Set<string>();
  for (const item of list) {
    if (!NAME.test(item.name))
      throw new TlabError(
        `${file}: ${what}: '${item.name}' is not a valid name (letters, digits and _ . + -); set name:`,
      );
    if (seen.has(item.name)) throw new TlabError(`${file}: ${what}: the name '${item.name}' is used twice`);
    seen.add(item.name);
  }
  return list;
}

const CHECKPOINT = /^(?:epoch|step)[_-](\d+)$/;

/** The model folder to evaluate: `dir` itself, or its checkpoint folder chosen by `checkpoint` (-1 = latest). */
export function chooseCheckpoint(dir: string, checkpoint: number, where: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new TlabError(`${where}: ${dir}: model folder not found`);
  if (existsSync(join(dir, 'config.json'))) return dir;
  const found = readdirSync(dir)
    .map((n) => ({ n, m: CHECKPOINT.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .filter((x) => existsSync(join(dir, x.n, 'config.json')))
    .map((x) => ({ name: x.n, index: Number(x.m[1]) }))
    .sort((a, b) => a.index - b.index);
  if (found.length === 0)
    throw new TlabError(
      `${where}: ${dir} holds neither config.json nor checkpoint folders (epoch_N/, step_N/) with one`,
    );
  if (checkpoint === -1) return join(dir, found[found.length - 1].name);
  const hit = found.find((f) => f.index === checkpoint);
  if (!hit)
    throw new TlabError(
      `${where}: checkpoint_to_eval ${checkpoint}: ${dir} has no such checkpoint; valid: ${validChoices(found.map((f) => String(f.index)))} (or -1 for the latest)`,
    );
  return join(dir, hit.name);
}

function defaultSplit(dir: string, where: string): string {
  const splits = Object.keys(readTaskManifest(dir).splits);
  for (const s of ['test', 'validation']) if (splits.includes(s)) return s;
  if (splits.length === 1) return splits[0];
  throw new TlabError(
    `${where}.split: required (the task has no test or validation split); valid: ${splits.join(', ')}`,
  );
}

/** Validates a parsed config and resolves paths (relative to the config file's folder) and defaults. */
export function resolveGridConfig(
  document: unknown,
  file: string,
  overrides: {
    out?: string;
    env?: NodeJS.ProcessEnv;
    baseDir?: string;
    /** Models a `base` may name without being in this grid (one model's row of a bigger grid). */
    knownModels?: readonly string[];
  } = {},
): ResolvedGridConfig {
  const parsed = EvalGridConfigSchema.safeParse(document ?? {});
  if (!parsed.success) throw zodIssuesError(file, [], parsed.error);
  const c = parsed.data;
  const root = overrides.baseDir ?? (file === '<inline>' ? process.cwd() : dirname(resolve(file)));
  const at = (p: string) => resolve(root, p);
  const env = overrides.env ?? process.env;
  const params = decoding(DEFAULT_PARAMS, c.inference);
  const checkpoint = c.checkpoint_to_eval ?? -1;

  const tasks = entries(c.tasks, 'tasks', (t) => basename(t.path), file).map((t): ResolvedTask => {
    const where = `${file}: tasks.${t.name}`;
    const dir = at(t.path);
    if (!existsSync(join(dir, 'manifest.json')))
      throw new TlabError(
        `${where}.path: ${dir} is not a task folder (no manifest.json); build it with tlab data build`,
      );
    const manifest = readTaskManifest(dir);
    const split = t.split ?? defaultSplit(dir, where);
    if (!manifest.splits[split])
      throw new TlabError(
        `${where}.split: '${split}' is not a split of the task; valid: ${Object.keys(manifest.splits).join(', ')}`,
      );
    const format = responseFormat(t.response_format);
    return {
      name: t.name,
      dir,
      split,
      grader: t.grader ?? manifest.grader ?? 'exact_match',
      graderOptions: t.grader_options ?? {},
      params: { ...decoding(params, t.inference), ...(format ? { responseFormat: format } : {}) },
      referenceField: t.reference_field ?? null,
      choicesField: t.choices_field ?? null,
      goldField: t.gold_field ?? null,
      choiceDelimiter: t.choice_delimiter ?? '',
    };
  });
  const taskNames = new Set(tasks.map((t) => t.name));

  const models = entries(
    c.models,
    'models',
    (m, i) => (m.path ? basename(resolve(root, m.path)) : `model-${i}`),
    file,
  ).map((m): ResolvedModel => {
    const where = `${file}: models.${m.name}`;
    if (!m.path && !m.server) throw new TlabError(`${where}: give path (a model folder) or server (a URL)`);
    if (m.train_task && !taskNames.has(m.train_task))
      throw new TlabError(
        `${where}.train_task: '${m.train_task}' is not a task of this grid; valid: ${[...taskNames].join(', ')}`,
      );
    const dir = m.path ? chooseCheckpoint(at(m.path), checkpoint, where) : null;
    const server = m.server
      ? {
          url: m.server.url,
          model: m.server.model ?? m.name,
          apiKey: m.server.api_key_env ? env[m.server.api_key_env] : undefined,
          concurrency: m.server.concurrency ?? 8,
          timeoutMs: m.server.timeout_s === undefined ? undefined : m.server.timeout_s * 1000,
          maxRetries: m.server.max_retries,
          revision: m.server.revision,
        }
      : null;
    if (m.server?.api_key_env && server?.apiKey === undefined)
      throw new TlabError(
        `${where}.server.api_key_env: the environment variable ${m.server.api_key_env} is not set`,
      );
    return {
      name: m.name,
      dir,
      base: m.base ?? null,
      trainTask: m.train_task ?? null,
      strategy: m.strategy ?? null,
      server,
    };
  });
  const modelNames = new Set([...models.map((m) => m.name), ...(overrides.knownModels ?? [])]);
  for (const m of models)
    if (m.base && !modelNames.has(m.base))
      throw new TlabError(
        `${file}: models.${m.name}.base: '${m.base}' is not a model of this grid; valid: ${[...modelNames].join(', ')}`,
      );

  const out = overrides.out ? resolve(overrides.out) : c.out ? at(c.out) : null;
  if (!out) throw new TlabError(`${file}: out: required (the grid's output folder), or pass --out`);
  return {
    file,
    out,
    models,
    tasks,
    nbEvalSamples: c.nb_eval_samples ?? null,
    seed: c.seed ?? 0,
    batchSize: c.batch_size ?? 32,
    bootstrap: c.bootstrap ?? 1000,
  };
}

/** Reads a YAML or JSON grid config file. */
export function loadGridConfig(path: string, overrides: { out?: string } = {}): ResolvedGridConfig {
  let document: unknown;
  try {
    document = YAML.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new TlabError(
      e.code === 'ENOENT'
        ? `${path}: config file not found`
        : `${path}: cannot parse (${e.message.split('\n')[0]})`,
    );
  }
  return resolveGridConfig(document, path, overrides);
}
