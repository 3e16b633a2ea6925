/**
 * Runs a training config end to end: reads the task, prepares the tokenizer and model, trains (resuming when the
 * run has checkpoints), saves the final model folder and plots the learning curve.
 *   <out>/checkpoints/<name>/   resumable state      <out>/logs/<name>/   metrics.jsonl, TensorBoard, loss.png
 *   <out>/models/<name>/        config.json, model.safetensors, tokenizer files
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadTaskSplit, openTask } from '../data/read.ts';
import type { TaskExample } from '../data/task-format.ts';
import { writeSafetensors } from '../engine/io/safetensors.ts';
import { type Gpt2Config, gpt2Model } from '../models/gpt2.ts';
import type { DecoderLm } from '../models/types.ts';
import { linePlotSpec, savePlot } from '../report/plot.ts';
import { loadTokenizer } from '../tokenize/hf-tokenizer.ts';
import { CharTokenizer, WordTokenizer } from '../tokenize/simple-tokenizer.ts';
import type { ChatMessage, TextTokenizer } from '../tokenize/types.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { ExampleBatcher } from './batcher.ts';
import type { TrainConfig } from './config.ts';
import { chatExample } from './examples.ts';
import { readJsonl } from './logging/jsonl-log.ts';
import { causalLmObjective } from './objective.ts';
import type { StrategyConfig } from './strategy.ts';
import { type TrainResult, train } from './trainer.ts';

/** Role markers of the built-in chat template used by tokenizers built from the data. */
export const SIMPLE_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
const ROLE_TOKENS = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<image>'];

export interface TrainingRunSummary {
  name: string;
  steps: number;
  resumedFrom: number;
  trainLoss: number | null;
  eval: { step: number; loss: number; accuracy: number } | null;
  paths: { checkpoints: string; logs: string; model: string; plot: string | null };
}

export interface RunTrainingOptions {
  configFile: string;
  /** Stop after this many steps of this session (simulated crash in tests). */
  stopAfter?: number;
  quiet?: boolean;
  resume?: 'auto' | 'never';
  /** Training from scratch only (`tlab pretrain`) or from a model folder only (`tlab finetune`). */
  mode?: 'pretrain' | 'finetune';
}

function messageTexts(examples: readonly TaskExample[]): string[] {
  return examples.flatMap((e) =>
    e.messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []))),
  );
}

function prepareTokenizer(config: TrainConfig, train: readonly TaskExample[], file: string): TextTokenizer {
  if (config.tokenizer.path) return loadTokenizer(config.tokenizer.path);
  if (config.tokenizer.build) {
    const common = {
      corpus: messageTexts(train),
      extraSpecialTokens: ROLE_TOKENS,
      chatTemplate: SIMPLE_CHAT_TEMPLATE,
    };
    return config.tokenizer.build === 'char'
      ? CharTokenizer.build(common)
      : WordTokenizer.build({ ...common, splitPunctuation: true });
  }
  if (config.model.from) return loadTokenizer(config.model.from);
  throw new TlabError(`${file}: tokenizer: give tokenizer.path or tokenizer.build`);
}

function prepareModel(
  config: TrainConfig,
  tokenizer: TextTokenizer,
  file: string,
): { model: DecoderLm; modelConfig: Record<string, unknown> } {
  if (!config.model.config) {
    throw new TlabError(`${file}: model.from is not supported by this build yet; give model.config`);
  }
  const c = { ...config.model.config };
  const type = c.model_type;
  if (type !== 'gpt2')
    throw new TlabError(
      `${file}: model.config.model_type: '${String(type)}' cannot be trained from scratch here; valid: gpt2`,
    );
  c.vocab_size ??= tokenizer.vocabSize;
  c.n_positions ??= config.data.seq_len;
  for (const field of ['n_embd', 'n_layer', 'n_head']) {
    if (!Number.isInteger(c[field]) || (c[field] as number) <= 0)
      throw new TlabError(`${file}: model.config.${field}: must be a positive integer`);
  }
  if ((c.vocab_size as number) < tokenizer.vocabSize) {
    throw new TlabError(
      `${file}: model.config.vocab_size ${c.vocab_size} is smaller than the tokenizer's ${tokenizer.vocabSize}`,
    );
  }
  if ((c.n_positions as number) < config.data.seq_len) {
    throw new TlabError(
      `${file}: model.config.n_positions ${c.n_positions} is smaller than data.seq_len ${config.data.seq_len}`,
    );
  }
  return { model: gpt2Model(c as unknown as Gpt2Config), modelConfig: c };
}

function strategyOf(config: TrainConfig): StrategyConfig {
  const s = config.strategy;
  const targets = s.lora?.targets.map((t) =>
    t.startsWith('/') && t.endsWith('/') && t.length > 2 ? new RegExp(t.slice(1, -1)) : t,
  );
  return {
    kind: s.kind,
    lora: s.lora
      ? { r: s.lora.r, alpha: s.lora.alpha, dropout: s.lora.dropout, rsLora: s.lora.rs_lora, targets }
      : undefined,
    components: s.components,
    learningRates: s.learning_rates,
    weightDecay: s.weight_decay,
  };
}

function toChat(e: TaskExample): ChatMessage[] {
  return e.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' })),
  }));
}

export async function runTraining(
  config: TrainConfig,
  options: RunTrainingOptions,
): Promise<TrainingRunSummary> {
  const file = options.configFile;
  if (options.mode === 'pretrain' && config.model.from)
    throw new TlabError(`${file}: model.from: tlab pretrain trains from scratch; use tlab finetune`);
  if (options.mode === 'finetune' && !config.model.from)
    throw new TlabError(`${file}: model.from: tlab finetune needs a model folder to start from`);
  const task = openTask(config.data.task);
  const trainExamples = await loadTaskSplit(task.dir, config.data.train_split);
  const evalSplit =
    config.data.eval_split && task.manifest.splits[config.data.eval_split] ? config.data.eval_split : null;
  const evalExamples = evalSplit ? await loadTaskSplit(task.dir, evalSplit) : [];
  const tokenizer = prepareTokenizer(config, trainExamples, file);
  const { model, modelConfig } = prepareModel(config, tokenizer, file);
  const tokenize = (examples: readonly TaskExample[]) =>
    examples.map((e) => chatExample(tokenizer, toChat(e), { trainOn: config.data.train_on, uid: e.uid }));
  const t = config.training;
  const micro = t.micro_batch_size ?? t.batch_size;
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const trainSource = new ExampleBatcher(tokenize(trainExamples), {
    batchSize: micro,
    seqLen: config.data.seq_len,
    seed: config.seed,
    padId,
  });
  const evalSource = evalExamples.length
    ? new ExampleBatcher(tokenize(evalExamples), {
        batchSize: micro,
        seqLen: config.data.seq_len,
        seed: config.seed,
        padId,
        ordered: true,
      })
    : null;
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        modelConfig,
        from: config.model.from ?? null,
        strategy: config.strategy,
        data: { ...config.data, manifest: task.manifest.splits },
        vocab: tokenizer.vocabSize,
        batch: [t.batch_size, micro],
        optimizer: [t.optimizer, t.betas, t.eps, t.momentum],
        seed: config.seed,
      }),
    )
    .digest('hex');
  const runDirs = {
    checkpoints: join(config.out, 'checkpoints', config.name),
    logs: join(config.out, 'logs', config.name),
    model: join(config.out, 'models', config.name),
  };
  const result: TrainResult = await train({
    checkpointDir: runDirs.checkpoints,
    logDir: runDirs.logs,
    objective: causalLmObjective(model, micro, config.data.seq_len, t.label_smoothing),
    train: trainSource,
    eval: evalSource
      ? { source: evalSource, batches: Math.min(t.eval_batches, evalSource.batchesPerEpoch) }
      : null,
    strategy: strategyOf(config),
    optimizer:
      t.optimizer === 'adamw'
        ? { kind: 'adamw', beta1: t.betas[0], beta2: t.betas[1], eps: t.eps }
        : { kind: 'sgd', momentum: t.momentum },
    learningRate: t.lr,
    schedule: {
      kind: t.schedule,
      warmupSteps: t.warmup_steps,
      totalSteps: t.max_steps,
      minRatio: t.min_lr_ratio,
    },
    clipNorm: t.clip_grad_norm,
    maxSteps: t.max_steps,
    microBatches: t.batch_size / micro,
    stepsPerRun: t.steps_per_run,
    evalEvery: t.eval_every,
    saveEvery: t.save_every,
    logEvery: t.log_every,
    keepCheckpoints: t.keep_checkpoints,
    seed: config.seed,
    fingerprint,
    resume: options.resume,
    stopAfter: options.stopAfter,
    quiet: options.quiet,
  });
  if (result.step >= t.max_steps) saveModelDir(runDirs.model, modelConfig, result, tokenizer);
  const plot = await plotLearningCurve(runDirs.logs, config.name);
  const trainLosses = result.losses;
  return {
    name: config.name,
    steps: result.step,
    resumedFrom: result.resumedFrom,
    trainLoss: trainLosses.length ? trainLosses[trainLosses.length - 1] : null,
    eval: result.evals.length ? result.evals[result.evals.length - 1] : null,
    paths: { ...runDirs, plot },
  };
}

/** Writes the final model folder atomically: config.json, model.safetensors (merged), tokenizer files. */
function saveModelDir(
  dir: string,
  modelConfig: Record<string, unknown>,
  result: TrainResult,
  tokenizer: TextTokenizer,
): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeJsonAtomic(join(tmp, 'config.json'), {
    ...modelConfig,
    architectures: ['GPT2LMHeadModel'],
    torch_dtype: 'float32',
  });
  writeSafetensors(join(tmp, 'model.safetensors'), result.mergedWeights, { format: 'pt' });
  (tokenizer as TextTokenizer & { save?: (d: string) => void }).save?.(tmp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/** loss.png / loss.svg from metrics.jsonl: training loss and evaluation loss against the step. */
export async function plotLearningCurve(logDir: string, title: string): Promise<string | null> {
  const path = join(logDir, 'metrics.jsonl');
  if (!existsSync(path)) return null;
  const { records } = readJsonl(path);
  const series = (split: string) =>
    records
      .filter((r) => r.split === split && typeof r.loss === 'number')
      .map((r) => ({ x: r.step, y: r.loss as number }));
  const trainPts = series('train');
  if (trainPts.length === 0) return null;
  const evalPts = series('eval');
  const spec = linePlotSpec({
    title: `${title}: learning curve`,
    x: { title: 'step' },
    y: { title: 'loss', scale: 'log' },
    series: [
      { name: 'train', points: trainPts },
      ...(evalPts.length ? [{ name: 'eval', points: evalPts }] : []),
    ],
  });
  const files = await savePlot(spec, join(logDir, 'loss'));
  return files.png;
}
