/** `tlab generate`: text generation from a model folder, with decoding knobs from flags or a config file. */
import { appendFileSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import YAML from 'yaml';
import { z } from 'zod';
import { zodIssuesError } from '../../data/config.ts';
import type { HostTensor } from '../../engine/tensor.ts';
import { type GenerateOptions, Generator, type Prompt } from '../../eval/generate.ts';
import { chatStopIds } from '../../eval/inference/chat-render.ts';
import { type PromptSource, readPromptFile } from '../../eval/prompt-file.ts';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import type { DecoderLm } from '../../models/types.ts';
import type { TextTokenizer } from '../../tokenize/types.ts';
import {
  DEFAULT_UNKNOWN_TOKEN_THRESHOLD,
  distinctUnknownId,
  unknownTokenProblem,
  unknownTokenRate,
  warnUnknownTokens,
} from '../../train/unknown-tokens.ts';
import { TlabError } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';
import { nonNegativeInt, positiveInt } from '../options.ts';

/** The config file's keys (snake_case, as in experiment YAML); flags given on the command line win. */
const ConfigSchema = z
  .object({
    model: z.string().min(1),
    prompt: z.union([z.string(), z.array(z.string()).min(1)]),
    prompt_file: z.string().min(1),
    max_new_tokens: z.int().min(1),
    temperature: z.number().min(0),
    top_k: z.int().min(0),
    top_p: z.number().gt(0).max(1),
    stop: z.union([z.string().min(1), z.array(z.string().min(1))]),
    seed: z.int(),
    batch_size: z.int().min(1),
    chat: z.boolean(),
    cache: z.boolean(),
    log: z.string().min(1),
  })
  .partial()
  .strict();
type GenerateConfig = z.infer<typeof ConfigSchema>;

interface Flags {
  model?: string;
  prompt?: string[];
  promptFile?: string;
  config?: string;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
  batchSize?: number;
  chat?: boolean;
  cache: boolean;
  log?: string;
  json?: boolean;
}

function temperature(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`expected a number >= 0 (0 = greedy), got '${value}'`);
  return n;
}

function probability(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1))
    throw new InvalidArgumentError(`expected a number in (0, 1] (1 = off), got '${value}'`);
  return n;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return n;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate text from a model folder (greedy or sampled, batched, KV-cached)')
    .option('-m, --model <dir>', 'model folder: config.json, model.safetensors, tokenizer.json')
    .option('-p, --prompt <text>', 'a prompt (repeatable)', collect)
    .option(
      '-f, --prompt-file <file>',
      'prompts: one per line, or JSONL of strings, {"prompt"} or {"messages"}',
    )
    .option('-c, --config <file>', 'YAML/JSON with these settings in snake_case (flags override it)')
    .option('-n, --max-new-tokens <n>', 'most tokens to generate per prompt (default 64)', positiveInt)
    .option('-t, --temperature <t>', 'sampling temperature; 0 = greedy (default 0)', temperature)
    .option('--top-k <k>', 'sample among the k most likely tokens; 0 = off (default)', nonNegativeInt)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]; 1 = off (default)', probability)
    .option('--stop <text>', 'stop when the output contains this text, which is cut (repeatable)', collect)
    .option('--seed <n>', 'sampling seed (default 0)', integer)
    .option('-b, --batch-size <n>', 'prompts per batch (default 8)', positiveInt)
    .option('--chat', "render prompts with the tokenizer's chat template (as a user turn)")
    .option('--no-cache', 'no KV cache: re-run the full forward pass each step (the reference path)')
    .option('--log <file>', 'append one JSON record per prompt (prompt, completion, settings, model, times)')
    .option('--json', 'print one JSON record per prompt instead of the text')
    .action(async (flags: Flags, command: Command) => {
      const explicit = (name: string) => command.getOptionValueSource(name) === 'cli';
      // Through commander's output configuration, so tests can run the command in-process.
      const output = command.configureOutput();
      const write = (text: string) => (output.writeOut ? output.writeOut(text) : process.stdout.write(text));
      await runGenerate(flags, explicit, write);
    });
}

async function runGenerate(
  flags: Flags,
  explicit: (name: string) => boolean,
  write: (text: string) => void,
): Promise<void> {
  const config = flags.config ? readConfig(flags.config) : {};
  const base = flags.config ? dirname(resolve(flags.config)) : process.cwd();
  const fromConfig = (path: string | undefined) => (path === undefined ? undefined : resolve(base, path));
  const modelDir = flags.model ?? fromConfig(config.model);
  if (!modelDir)
    throw new TlabError('--model: required (a model folder), on the command line or as model: in --config');
  const settings = {
    maxNewTokens: flags.maxNewTokens ?? config.max_new_tokens ?? 64,
    temperature: flags.temperature ?? config.temperature ?? 0,
    topK: flags.topK ?? config.top_k ?? 0,
    topP: flags.topP ?? config.top_p ?? 1,
    stop: flags.stop ?? (config.stop === undefined ? [] : [config.stop].flat()),
    seed: flags.seed ?? config.seed ?? 0,
    batchSize: flags.batchSize ?? config.batch_size ?? 8,
    chat: flags.chat ?? config.chat ?? false,
    useCache: explicit('cache') ? flags.cache : (config.cache ?? true),
  };
  const logPath = flags.log ?? fromConfig(config.log);
  const sources = promptSources(flags, config, fromConfig);

  const loaded = loadLanguageModel(modelDir);
  const prompts = sources.map((s) => renderPrompt(s, loaded.tokenizer, settings.chat));
  const generator = new Generator(loaded.model, loaded.weights, loaded.tokenizer);
  // Per-batch progress on stderr, when there is more than one batch.
  const progress = new Progress({
    total: prompts.length,
    label: 'generate',
    unit: 'prompt',
    silent: prompts.length <= settings.batchSize,
  });
  const startedAt = new Date();
  const t0 = performance.now();
  let done = 0;
  // A chat turn ends at the template's end-of-turn token (<|end|>, <|im_end|>, <|eot_id|>), not only at EOS.
  const chat = settings.chat || sources.some((s) => 'messages' in s);
  warnPromptUnknownTokens(modelDir, loaded.tokenizer, prompts);
  const options: GenerateOptions = {
    ...settings,
    ...(chat ? { stopTokenIds: chatStopIds(loaded.tokenizer) } : {}),
    onProgress: (n) => {
      progress.tick(n - done);
      done = n;
    },
  };
  let results: Awaited<ReturnType<Generator['generate']>>;
  try {
    results = await generator.generate(prompts, options);
  } finally {
    await generator.release();
  }
  // The last tick already printed the final line; a TTY bar still needs its newline.
  if (process.stderr.isTTY) progress.finish();
  const seconds = (performance.now() - t0) / 1000;
  const finishedAt = new Date();
  const records = results.map((r, i) => ({
    model: modelDir,
    prompt: 'text' in sources[i] ? sources[i].text : sources[i].messages,
    completion: r.text,
    finish_reason: r.finishReason,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    settings: {
      max_new_tokens: settings.maxNewTokens,
      temperature: settings.temperature,
      top_k: settings.topK,
      top_p: settings.topP,
      stop: settings.stop,
      seed: settings.seed,
      batch_size: settings.batchSize,
      chat: settings.chat,
      cache: settings.useCache,
    },
    started_at: startedAt.toISOString(),
    finished_at: finishedAt.toISOString(),
    seconds,
  }));
  // One write for all lines, so a crash never leaves part of a record.
  if (logPath) appendFileSync(logPath, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  if (flags.json) for (const r of records) write(`${JSON.stringify(r)}\n`);
  else if (records.length === 1) write(`${records[0].completion}\n`);
  else
    records.forEach((r, i) => {
      write(`--- ${i + 1} (${r.finish_reason}, ${r.completion_tokens} tokens)\n${r.completion}\n`);
    });
}

/** A causal LM (or a VLM, text only) and its tokenizer from a Hugging Face folder. */
function loadLanguageModel(dir: string): {
  model: DecoderLm;
  weights: Map<string, HostTensor>;
  tokenizer: TextTokenizer;
} {
  const folder = loadModelFolder(dir);
  if (folder.kind !== 'causal-lm' && folder.kind !== 'vlm')
    throw new TlabError(
      `${dir}: the folder holds a ${folder.kind} (config.json architectures); generation needs a causal LM or a VLM`,
    );
  if (!folder.tokenizer) throw new TlabError(`${dir}: no tokenizer.json (generation needs the tokenizer)`);
  return { model: folder.model, weights: folder.weights, tokenizer: folder.tokenizer };
}

function readConfig(path: string): GenerateConfig {
  let document: unknown;
  try {
    document = YAML.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TlabError(`${path}: cannot read config (${(error as Error).message.split('\n')[0]})`);
  }
  const parsed = ConfigSchema.safeParse(document ?? {});
  if (!parsed.success) throw zodIssuesError(path, [], parsed.error);
  return parsed.data;
}

function promptSources(
  flags: Flags,
  config: GenerateConfig,
  fromConfig: (path: string | undefined) => string | undefined,
): PromptSource[] {
  const texts = flags.prompt ?? (flags.promptFile ? [] : [config.prompt ?? []].flat());
  const file = flags.promptFile ?? (flags.prompt ? undefined : fromConfig(config.prompt_file));
  const sources: PromptSource[] = texts.map((text) => ({ text }));
  if (file) sources.push(...readPromptFile(file));
  if (sources.length === 0) throw new TlabError('--prompt or --prompt-file: give at least one prompt');
  return sources;
}

/** Prompts the tokenizer cannot encode (its unknown token) are continued from noise: say so. */
function warnPromptUnknownTokens(
  modelDir: string,
  tokenizer: TextTokenizer,
  prompts: readonly Prompt[],
): void {
  const rows = prompts.map((p) => ({
    ids: typeof p === 'string' ? tokenizer.encode(p) : 'ids' in p ? p.ids : (p as readonly number[]),
  }));
  const rate = unknownTokenRate('prompts', rows, distinctUnknownId(tokenizer));
  const problem = unknownTokenProblem(rate, DEFAULT_UNKNOWN_TOKEN_THRESHOLD);
  if (problem) warnUnknownTokens(`${modelDir}'s tokenizer`, [problem]);
}

function renderPrompt(source: PromptSource, tokenizer: TextTokenizer, chat: boolean): Prompt {
  if ('messages' in source) return tokenizer.encodeChat(source.messages, { addGenerationPrompt: true });
  if (chat)
    return tokenizer.encodeChat([{ role: 'user', content: source.text }], { addGenerationPrompt: true });
  return source.text;
}
