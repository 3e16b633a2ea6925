/**
 * Runs a training config end to end: reads the task, prepares the tokenizer and model, trains (resuming when the
 * run has checkpoints), saves the final model folder and plots the learning curve.
 *   <out>/checkpoints/<name>/   resumable state      <out>/logs/<name>/   metrics.jsonl, TensorBoard, loss.png
 *   <out>/models/<name>/        config.json, model.safetensors, tokenizer files (LoRA merged)
 *   <out>/models/<name>-adapter/ adapter_config.json, adapter_model.safetensors (PEFT layout; LoRA fine-tunes)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PreprocessConfig } from '../data/images/preprocess.ts';
import {
  type ImageProcessor,
  loadImageProcessor,
  prepareVlmImage,
  qwen2VlProcessorJson,
} from '../data/images/qwen2-vl-processor.ts';
import { loadTaskSplit, openTask } from '../data/read.ts';
import type { TaskExample } from '../data/task-format.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { componentOf, componentPrefixes } from '../models/components.ts';
import { type HfConfig, parseHfConfig } from '../models/hf/configs.ts';
import { loadModelFolder, type ModelFolder, saveModelFolder } from '../models/hf/model-folder.ts';
import { buildModel, type LoadedModel } from '../models/hf/registry.ts';
import type { DecoderLm, Vlm, VlmImage } from '../models/types.ts';
import { countImagePlaceholders } from '../models/vlm.ts';
import { learningCurveSpec } from '../report/learning-curve.ts';
import { savePlot } from '../report/plot.ts';
import { loadTokenizer } from '../tokenize/hf-tokenizer.ts';
import { CharTokenizer, WordTokenizer } from '../tokenize/simple-tokenizer.ts';
import type { ChatMessage, TextTokenizer } from '../tokenize/types.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { type BatcherOptions, ExampleBatcher } from './batcher.ts';
import type { TrainConfig } from './config.ts';
import { type ChanceBaseline, majorityAnswerBaseline, nonContentTargetIds } from './content-tokens.ts';
import { chatExample, expandImageTokens } from './examples.ts';
import { finalMetrics } from './final-metrics.ts';
import { readJsonl } from './logging/jsonl-log.ts';
import { causalLmObjective } from './objective.ts';
import { applyPeftAdapter, savePeftAdapter } from './peft-adapter.ts';
import { resumeFingerprint } from './resume-fingerprint.ts';
import { runClassifierTraining } from './run-classifier-training.ts';
import type { StrategyConfig } from './strategy.ts';
import { type EvalRecord, type TrainResult, train } from './trainer.ts';
import { checkTruncation, truncationStats } from './truncation.ts';
import {
  DEFAULT_UNKNOWN_TOKEN_THRESHOLD,
  distinctUnknownId,
  UNKNOWN_TOKEN_ADVICE,
  type UnknownTokenRate,
  unknownTokenProblem,
  unknownTokenRate,
  warnUnknownTokens,
} from './unknown-tokens.ts';

/** Role markers of the built-in chat template used by tokenizers built from the data. */
export const SIMPLE_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
const ROLE_TOKENS = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<image>'];
/** Parameter-name prefixes of model components (LLaVA layout); decoder-only models have none. */
export const COMPONENT_PREFIXES: Readonly<Record<string, string>> = {
  encoder: 'vision_tower',
  projector: 'multi_modal_projector',
  decoder: 'language_model',
};

export interface TrainingRunSummary {
  name: string;
  steps: number;
  resumedFrom: number;
  trainLoss: number | null;
  /** Seconds in training steps this session (no compilation, evaluation or checkpoints). */
  stepSeconds: number;
  /** The last evaluation: loss, content-token accuracy, teacher-forced exact match (trainer.ts EvalRecord). */
  eval: EvalRecord | null;
  /** The split evaluated during training and its size (null: none; the task has no `data.eval_split`). */
  evalSplit: { name: string; rows: number } | null;
  /** Chance: always answering the training split's most frequent answer, scored on the evaluated split. */
  baseline: ChanceBaseline | null;
  /** Unknown-token rate of each tokenised split (unknown-tokens.ts). */
  unknownTokens: UnknownTokenRate[];
  /**
   * `adapter`: the LoRA adapter in PEFT's layout, beside the merged model (LoRA-only fine-tunes of a model folder;
   * null otherwise: without a saved base there is nothing to load it onto, and fully trained parts are not adapters).
   */
  paths: { checkpoints: string; logs: string; model: string; adapter: string | null; plot: string | null };
}

export interface RunTrainingOptions {
  configFile: string;
  /** Stop after this many steps of this session (simulated crash in tests). */
  stopAfter?: number;
  /** Stops training between steps (a checkpoint is saved first); runTraining then throws. */
  signal?: AbortSignal;
  quiet?: boolean;
  resume?: 'auto' | 'never';
  /** Training from scratch only (`tlab pretrain`) or from a model folder only (`tlab finetune`). */
  mode?: 'pretrain' | 'finetune';
  /** Where checkpoints, logs and the final model go (default <out>/checkpoints|logs|models/<name>). */
  paths?: { checkpoints: string; logs: string; model: string };
}

function messageTexts(examples: readonly TaskExample[]): string[] {
  return examples.flatMap((e) =>
    e.messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []))),
  );
}

export async function prepareTokenizer(
  config: TrainConfig,
  train: readonly TaskExample[],
  file: string,
  folder: ModelFolder | null,
): Promise<TextTokenizer> {
  if (config.tokenizer.path) return loadTokenizer(config.tokenizer.path);
  if (config.tokenizer.build) {
    // One vocabulary over several tasks' training splits, so every model built with it can read each of them.
    const corpus: TaskExample[] = [];
    for (const t of config.tokenizer.from_tasks ?? []) {
      const task = openTask(t);
      if (!task.manifest.splits.train)
        throw new TlabError(
          `${file}: tokenizer.from_tasks: ${t} has no train split to build the vocabulary from`,
        );
      corpus.push(...(await loadTaskSplit(task.dir, 'train')));
    }
    const common = {
      corpus: messageTexts(config.tokenizer.from_tasks ? corpus : train),
      extraSpecialTokens: ROLE_TOKENS,
      chatTemplate: SIMPLE_CHAT_TEMPLATE,
    };
    return config.tokenizer.build === 'char'
      ? CharTokenizer.build(common)
      : WordTokenizer.build({ ...common, splitPunctuation: true });
  }
  if (folder?.tokenizer) return folder.tokenizer;
  if (folder)
    throw new TlabError(`${file}: tokenizer: ${folder.dir} has no tokenizer.json; give tokenizer.path`);
  throw new TlabError(`${file}: tokenizer: give tokenizer.path or tokenizer.build`);
}

interface PreparedModel {
  loaded: LoadedModel & { config: HfConfig };
  model: DecoderLm;
  /** Set for vision-language models. */
  vlm: Vlm | null;
  /** Pre-trained weights (fine-tuning), or null to initialise from the seed. */
  weights: Map<string, HostTensor> | null;
}

/** Scratch models get their vocabulary and context length from the tokenizer and data unless the config sets them. */
function scratchConfig(config: TrainConfig, tokenizer: TextTokenizer, file: string): Record<string, unknown> {
  const c: Record<string, unknown> = { ...config.model.config };
  const text = (t: Record<string, unknown>) => {
    t.vocab_size ??= tokenizer.vocabSize;
    if (t.model_type === 'gpt2') t.n_positions ??= config.data.seq_len;
    else t.max_position_embeddings ??= config.data.seq_len;
    return t;
  };
  if (c.model_type === 'qwen2_vl') {
    // Text fields at the top level (or in text_config); the placeholder is the built tokenizer's <image>.
    if (typeof c.text_config === 'object' && c.text_config !== null)
      c.text_config = text({ ...(c.text_config as Record<string, unknown>) });
    else text(c);
    const image = tokenizer.tokenToId('<image>');
    if (c.image_token_id === undefined) {
      if (image === undefined)
        throw new TlabError(
          `${file}: model.config.image_token_id: the tokenizer has no <image> token; set the id`,
        );
      c.image_token_id = image;
    }
    return c;
  }
  if (c.model_type !== 'llava') return text(c);
  if (typeof c.text_config !== 'object' || c.text_config === null)
    throw new TlabError(`${file}: model.config.text_config: a llava model needs its decoder's config`);
  c.text_config = text({ ...(c.text_config as Record<string, unknown>) });
  const image = tokenizer.tokenToId('<image>');
  if (c.image_token_index === undefined && c.image_token_id === undefined) {
    if (image === undefined)
      throw new TlabError(
        `${file}: model.config.image_token_index: the tokenizer has no <image> token; set the id`,
      );
    c.image_token_index = image;
  }
  return c;
}

function prepareModel(
  config: TrainConfig,
  tokenizer: TextTokenizer,
  file: string,
  folder: ModelFolder | null,
): PreparedModel {
  let prepared: PreparedModel;
  if (folder) {
    if (folder.kind !== 'causal-lm' && folder.kind !== 'vlm') {
      throw new TlabError(
        `${file}: model.from: ${folder.dir} is a ${folder.kind}; the trainer fine-tunes language and vision-language models`,
      );
    }
    prepared = {
      loaded: folder,
      model: folder.model,
      vlm: folder.kind === 'vlm' ? folder.model : null,
      weights: config.model.adapter
        ? applyPeftAdapter(config.model.adapter, folder, folder.weights)
        : folder.weights,
    };
  } else {
    const hf = parseHfConfig(scratchConfig(config, tokenizer, file), file, {
      prefix: 'model.config',
      strict: true,
    });
    const loaded = buildModel(
      hf,
      hf.model_type === 'llava' || hf.model_type === 'qwen2_vl' ? 'vlm' : 'causal-lm',
    );
    if (loaded.kind !== 'causal-lm' && loaded.kind !== 'vlm') {
      throw new TlabError(`${file}: model.config: a ${hf.model_type} is not a language model`);
    }
    prepared = {
      loaded: { ...loaded, config: hf },
      model: loaded.model,
      vlm: loaded.kind === 'vlm' ? loaded.model : null,
      weights: null,
    };
  }
  const where = folder ? folder.dir : 'model.config';
  if (prepared.model.vocabSize < tokenizer.vocabSize) {
    throw new TlabError(
      `${file}: ${where}: the model embeds ${prepared.model.vocabSize} tokens, the tokenizer has ${tokenizer.vocabSize}`,
    );
  }
  if (config.data.seq_len !== undefined && prepared.model.maxPositions < config.data.seq_len) {
    throw new TlabError(
      `${file}: data.seq_len ${config.data.seq_len} exceeds the ${prepared.model.maxPositions} positions of ${where}`,
    );
  }
  return prepared;
}

/** The trainer's strategy from the config's (LoRA targets written as /regex/ become RegExps). */
export function strategyOf(config: Pick<TrainConfig, 'strategy'>): StrategyConfig {
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
    quantizeBase: s.quantize_base
      ? { format: s.quantize_base, blockSize: s.quant_block_size, doubleQuant: s.double_quant }
      : undefined,
  };
}

function toChat(e: TaskExample): ChatMessage[] {
  return e.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' })),
  }));
}

/** The example's image files (absolute), in placeholder order (an NLVR2-style pair has two). */
function imagesOf(e: TaskExample, taskDir: string): string[] {
  return e.messages.flatMap((m) =>
    m.content.flatMap((p) => (p.type === 'image' ? [join(taskDir, p.image)] : [])),
  );
}

/** A ViT-style processor for a model trained from scratch: resize to the encoder's size, scale to [-1, 1]. */
function defaultPreprocessor(vlm: Vlm): PreprocessConfig {
  const size = vlm.encoder.imageSize;
  return {
    resize: { height: size, width: size },
    resample: 3,
    rescale: 1 / 255,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  };
}

/** Preprocesses every distinct image once (they are reused across epochs), checked against the model. */
async function loadImages(
  files: Iterable<string>,
  processor: ImageProcessor,
  vlm: Vlm,
): Promise<Map<string, VlmImage>> {
  const out = new Map<string, VlmImage>();
  for (const f of files) {
    if (out.has(f)) continue;
    const image = await prepareVlmImage(readFileSync(f), processor, f);
    vlm.imageInputs.tokens(image, `${f}: preprocessed`);
    out.set(f, image);
  }
  return out;
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
  // Classifiers learn the task's labels (run-classifier-training.ts); the rest of this file is the LM objective's.
  if (config.objective !== 'causal-lm') return runClassifierTraining(config, options);
  if (config.data.seq_len === undefined)
    throw new Error('unreachable: the config schema requires data.seq_len');
  const task = openTask(config.data.task);
  const trainExamples = await loadTaskSplit(task.dir, config.data.train_split);
  const evalSplit =
    config.data.eval_split && task.manifest.splits[config.data.eval_split] ? config.data.eval_split : null;
  const evalExamples = evalSplit ? await loadTaskSplit(task.dir, evalSplit) : [];
  const folder = config.model.from ? loadModelFolder(config.model.from) : null;
  const tokenizer = await prepareTokenizer(config, trainExamples, file, folder);
  const prepared = prepareModel(config, tokenizer, file, folder);
  const { model } = prepared;
  const vlm = prepared.vlm;
  let preprocess: ImageProcessor | null = null;
  let preparedImages = new Map<string, VlmImage>();
  if (vlm) {
    preprocess = folder?.preprocessorConfig
      ? loadImageProcessor(folder.preprocessorConfig)
      : { kind: 'fixed', config: defaultPreprocessor(vlm) };
    const files = [...trainExamples, ...evalExamples].flatMap((e) => imagesOf(e, task.dir));
    preparedImages = await loadImages(files, preprocess, vlm);
  }
  const tokenize = (examples: readonly TaskExample[]) =>
    examples.map((e) => {
      const ex = chatExample(tokenizer, toChat(e), { trainOn: config.data.train_on, uid: e.uid });
      if (!vlm) return ex;
      const files = imagesOf(e, task.dir);
      const placeholders = countImagePlaceholders(ex.ids, vlm.imageTokenId);
      if (placeholders !== files.length)
        throw new TlabError(
          `${file}: data.task: example ${e.uid} has ${files.length} image(s) and ${placeholders} image placeholder token(s) (id ${vlm.imageTokenId}) after the chat template`,
        );
      const counts = files.map((f) => vlm.imageInputs.tokens(preparedImages.get(f)!, f));
      return { ...expandImageTokens(ex, vlm.imageTokenId, counts), images: files };
    });
  const trainTokens = tokenize(trainExamples);
  const evalTokens = tokenize(evalExamples);
  const unknownTokens = checkUnknownTokens(config, file, tokenizer, [
    [config.data.train_split, trainTokens],
    ...(evalSplit ? [[evalSplit, evalTokens] as [string, typeof evalTokens]] : []),
  ]);
  checkTruncation(
    file,
    config.data.seq_len,
    [
      truncationStats(config.data.train_split, trainTokens, config.data.seq_len),
      ...(evalSplit ? [truncationStats(evalSplit, evalTokens, config.data.seq_len)] : []),
    ],
    config.data.train_split,
  );
  const chance = majorityAnswerBaseline(
    trainExamples,
    evalSplit ? evalExamples : trainExamples,
    evalSplit ?? config.data.train_split,
  );
  let images: BatcherOptions['images'];
  if (vlm) {
    const perRow = Math.max(1, ...[...trainTokens, ...evalTokens].map((e) => e.images?.length ?? 0));
    images = { inputs: vlm.imageInputs, perRow, image: (f) => preparedImages.get(f)! };
  }
  const t = config.training;
  const micro = t.micro_batch_size ?? t.batch_size;
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const trainSource = new ExampleBatcher(trainTokens, {
    batchSize: micro,
    seqLen: config.data.seq_len,
    seed: config.seed,
    padId,
    images,
  });
  if (images)
    images.signature = vlm!.imageInputs.signature(
      trainSource.imageRows(trainSource.indices(0).map((i) => trainTokens[i])),
    );
  const evalSource = evalTokens.length
    ? new ExampleBatcher(evalTokens, {
        batchSize: micro,
        seqLen: config.data.seq_len,
        seed: config.seed,
        padId,
        ordered: true,
        once: true,
        images,
      })
    : null;
  const { fingerprint, settings } = resumeFingerprint({
    config,
    dataSplits: task.manifest.splits,
    tokenizer,
    startWeights: prepared.weights,
    modelConfig: prepared.loaded.config,
  });
  const runDirs = options.paths ?? {
    checkpoints: join(config.out, 'checkpoints', config.name),
    logs: join(config.out, 'logs', config.name),
    model: join(config.out, 'models', config.name),
  };
  const result: TrainResult = await train({
    checkpointDir: runDirs.checkpoints,
    logDir: runDirs.logs,
    objective: causalLmObjective(
      model,
      micro,
      config.data.seq_len,
      t.label_smoothing,
      vlm && images
        ? { model: vlm, images: trainSource.imageRows(trainSource.indices(0).map((i) => trainTokens[i])) }
        : null,
      nonContentTargetIds(tokenizer, [...trainTokens, ...evalTokens]),
    ),
    initialWeights: prepared.weights,
    allowInit: (name) => name.includes('.lora_'),
    componentOf,
    componentPrefixes: vlm ? componentPrefixes(vlm.modelType) : { decoder: '' },
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
    stepsPerRun: t.steps_per_run ?? (micro < t.batch_size ? 1 : 4),
    evalEvery: t.eval_every,
    saveEvery: t.save_every,
    logEvery: t.log_every,
    keepCheckpoints: t.keep_checkpoints,
    seed: config.seed,
    fingerprint,
    settings,
    resume: options.resume,
    stopAfter: options.stopAfter,
    signal: options.signal,
    quiet: options.quiet,
    dataRecord: dataRecord(
      config.data.train_split,
      trainTokens.length,
      evalSplit ? { name: evalSplit, rows: evalTokens.length } : null,
      chance,
      unknownTokens,
    ),
  });
  let adapter: string | null = null;
  if (result.step >= t.max_steps) {
    saveModelDir(
      runDirs.model,
      prepared,
      result,
      tokenizer,
      config.tokenizer.path ?? config.model.from ?? null,
      preprocess,
    );
    const lora = strategyOf(config).lora;
    if (config.model.from && lora && onlyAdaptersTrain(config) && result.loraModules.length) {
      adapter = `${runDirs.model}-adapter`;
      savePeftAdapter(adapter, prepared.loaded, result.loraModules, result.weights, {
        lora: { ...lora, targets: [] },
        baseModel: config.model.from,
      });
    }
  }
  const plot = await plotLearningCurve(runDirs.logs, config.name);
  const trainLosses = result.losses;
  return {
    name: config.name,
    steps: result.step,
    resumedFrom: result.resumedFrom,
    stepSeconds: result.stepSeconds,
    ...finalMetrics(runDirs.logs, trainLosses, result.evals),
    evalSplit: evalSplit ? { name: evalSplit, rows: evalTokens.length } : null,
    baseline: chance,
    unknownTokens,
    paths: { ...runDirs, adapter, plot },
  };
}

/**
 * Unknown-token rates of the tokenised splits: each problem is warned about; one in the training split stops the
 * run unless `data.allow_unknown_tokens` (a model taught to predict the unknown token scores well on nothing).
 */
function checkUnknownTokens(
  config: TrainConfig,
  file: string,
  tokenizer: TextTokenizer,
  splits: readonly [string, readonly { ids: readonly number[]; labels: readonly number[] }[]][],
): UnknownTokenRate[] {
  const unk = distinctUnknownId(tokenizer);
  const threshold = config.data.unknown_token_threshold ?? DEFAULT_UNKNOWN_TOKEN_THRESHOLD;
  const rates = splits.map(([split, rows]) => unknownTokenRate(split, rows, unk));
  const problems = rates.flatMap((r) => unknownTokenProblem(r, threshold) ?? []);
  const trainProblem = unknownTokenProblem(rates[0], threshold);
  if (trainProblem && !config.data.allow_unknown_tokens)
    throw new TlabError(
      `${file}: data.task: ${config.data.task}: ${trainProblem}; training refused (set data.allow_unknown_tokens: true to train anyway)`,
      UNKNOWN_TOKEN_ADVICE,
    );
  warnUnknownTokens(`${file}: data.task ${config.data.task}`, problems);
  return rates;
}

/** The `data` record of metrics.jsonl (step 0): splits and sizes, the chance baseline, unknown-token rates. */
function dataRecord(
  trainSplit: string,
  trainRows: number,
  evalSplit: { name: string; rows: number } | null,
  chance: ChanceBaseline | null,
  unknown: readonly UnknownTokenRate[],
): Record<string, number | string | null> {
  return {
    train_split: trainSplit,
    train_rows: trainRows,
    eval_split: evalSplit?.name ?? null,
    eval_rows: evalSplit?.rows ?? null,
    chance_exact_match: chance?.exact_match ?? null,
    majority_answer: chance?.majority_answer ?? null,
    ...Object.fromEntries(
      unknown.flatMap((r) => [
        [`unknown_rate.${r.split}`, r.rate],
        [`answer_unknown_rate.${r.split}`, r.answer_rate],
      ]),
    ),
  };
}

/** LoRA is the only thing that trains (kind lora, or components that are LoRA or frozen). */
function onlyAdaptersTrain(config: TrainConfig): boolean {
  const s = config.strategy;
  if (s.kind === 'lora') return true;
  return s.kind === 'components' && !Object.values(s.components ?? {}).includes('full');
}

/** Writes the final model folder (Hugging Face layout, LoRA merged into the base weights) with the tokenizer. */
function saveModelDir(
  dir: string,
  prepared: PreparedModel,
  result: TrainResult,
  tokenizer: TextTokenizer,
  from: string | null,
  preprocess: ImageProcessor | null,
): void {
  const saver = tokenizer as TextTokenizer & { save?: (d: string) => void };
  let filesFrom = from;
  let scratch: string | null = null;
  if (!from && saver.save) {
    // A tokenizer built from the data (and a new VLM's processor): written where saveModelFolder copies
    // auxiliary files from.
    scratch = mkdtempSync(join(tmpdir(), 'tlab-tokenizer-'));
    saver.save(scratch);
    if (preprocess)
      writeJsonAtomic(
        join(scratch, 'preprocessor_config.json'),
        preprocess.kind === 'fixed'
          ? preprocessorJson(preprocess.config)
          : qwen2VlProcessorJson(preprocess.config),
      );
    filesFrom = scratch;
  }
  try {
    saveModelFolder(dir, prepared.loaded, result.mergedWeights, { filesFrom });
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

/** The Hugging Face preprocessor_config.json fields of a fixed-size processor. */
export function preprocessorJson(p: PreprocessConfig): Record<string, unknown> {
  const size =
    p.resize && 'height' in p.resize ? { height: p.resize.height, width: p.resize.width } : undefined;
  return {
    image_processor_type: 'ViTImageProcessor',
    do_resize: Boolean(p.resize),
    ...(size ? { size } : {}),
    resample: p.resample,
    do_rescale: p.rescale !== undefined,
    rescale_factor: p.rescale ?? 1 / 255,
    do_normalize: Boolean(p.normalize),
    image_mean: p.normalize?.mean ?? [0.5, 0.5, 0.5],
    image_std: p.normalize?.std ?? [0.5, 0.5, 0.5],
  };
}

/**
 * loss.png / loss.svg from metrics.jsonl: training and evaluation loss against the step, and beside them the
 * evaluation metrics (accuracy, exact match) when the run logged any.
 */
export async function plotLearningCurve(logDir: string, title: string): Promise<string | null> {
  const path = join(logDir, 'metrics.jsonl');
  if (!existsSync(path)) return null;
  const spec = learningCurveSpec(readJsonl(path).records, title);
  if (!spec) return null;
  const files = await savePlot(spec, join(logDir, 'loss'));
  return files.png;
}
