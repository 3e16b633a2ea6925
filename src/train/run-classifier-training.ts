/**
 * Runs a classification training config (`objective: image-classifier | sequence-classifier`) end to end: reads the
 * task's labelled examples (its label_column: TaskManifest.labels, TaskExample.label), prepares the classifier
 * (from model.config, or a folder with its head kept or a new one for the task's labels), preprocesses every image
 * once with the folder's processor (or the ViT default), trains with cross-entropy over the labels through the
 * same trainer as the LMs (full, LoRA, components encoder/decoder/head; checkpoints and exact resume; eval loss and
 * accuracy in metrics.jsonl and TensorBoard), and saves a Hugging Face folder whose config.json says its classes
 * (id2label / label2id) with the processor or tokenizer beside the weights.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../data/canonical-json.ts';
import { sha256Hex } from '../data/hash.ts';
import {
  loadPreprocessorConfig,
  type PreprocessConfig,
  preprocessImageBytes,
} from '../data/images/preprocess.ts';
import { loadTaskSplit, type OpenedTask, openTask } from '../data/read.ts';
import type { TaskExample, ChatMessage as TaskMessage } from '../data/task-format.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { componentOf } from '../models/components.ts';
import { AUXILIARY_FILES, saveModelFolder } from '../models/hf/model-folder.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import {
  type ClassifierKind,
  classifierPadId,
  defaultClassifierPreprocessor,
  folderClassifier,
  type HeadInit,
  type PreparedClassifier,
  scratchClassifier,
} from './classifier-model.ts';
import {
  ClassifierBatcher,
  type ClassifierExample,
  type ClassifierInput,
  classifierObjective,
} from './classifier-objective.ts';
import type { TrainConfig } from './config.ts';
import { finalMetrics } from './final-metrics.ts';
import { RESUME_MAY_CHANGE, tokenizerHash, weightsHash } from './resume-fingerprint.ts';
import {
  plotLearningCurve,
  prepareTokenizer,
  preprocessorJson,
  type RunTrainingOptions,
  strategyOf,
  type TrainingRunSummary,
} from './run-training.ts';
import type { StrategyConfig } from './strategy.ts';
import { train } from './trainer.ts';

export interface ClassifierRunSummary extends TrainingRunSummary {
  objective: ClassifierKind;
  /** The task's classes, in the order of the saved head (id2label). */
  labels: string[];
  head: HeadInit;
  /** Examples per split used, and the majority-class accuracy of the evaluation split (the chance baseline). */
  examples: { train: number; eval: number };
  chance: number | null;
}

/** The messages before the example's last assistant turn (what the classifier reads). */
function promptOf(example: TaskExample): TaskMessage[] {
  const end = example.messages.findLastIndex((m) => m.role === 'assistant');
  return example.messages.slice(0, end < 0 ? example.messages.length : end);
}

/**
 * A sequence classifier's input ids: the prompt through the chat template with its generation prompt when the
 * tokenizer has one, else its text parts one per line (as eval/inference/classifier-backend.ts encodes requests).
 */
export function classifierPromptIds(tokenizer: TextTokenizer, messages: readonly TaskMessage[]): number[] {
  if (tokenizer.hasChatTemplate)
    return tokenizer.encodeChat(
      messages.map((m) => ({
        role: m.role,
        content: m.content.flatMap((p) =>
          p.type === 'text' ? [{ type: 'text' as const, text: p.text }] : [],
        ),
      })),
      { addGenerationPrompt: true },
    );
  return tokenizer.encode(
    messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []))).join('\n'),
  );
}

/** Each example's class index, or an error naming the example without one. */
function labelIndices(task: OpenedTask, examples: readonly TaskExample[], file: string): number[] {
  return examples.map((e) => {
    const i = task.labelIndex(e);
    if (i < 0)
      throw new TlabError(
        `${file}: data.task: example ${e.uid} of ${task.dir} has ${e.label === undefined ? 'no label' : `the label '${e.label}', not one of the task's`}; labels: ${task.labels!.join(', ')}`,
      );
    return i;
  });
}

/** Preprocessed pixels of each example's one image (every distinct file decoded once). */
async function imageExamples(
  task: OpenedTask,
  examples: readonly TaskExample[],
  labels: readonly number[],
  processor: PreprocessConfig,
  shape: readonly [number, number, number],
  file: string,
): Promise<ClassifierExample[]> {
  const cache = new Map<string, Float32Array>();
  const out: ClassifierExample[] = [];
  for (const [i, e] of examples.entries()) {
    const images = promptOf(e).flatMap((m) =>
      m.content.flatMap((p) => (p.type === 'image' ? [p.image] : [])),
    );
    if (images.length !== 1)
      throw new TlabError(
        `${file}: data.task: example ${e.uid} has ${images.length} images in its prompt; an image classifier reads exactly one`,
      );
    const path = join(task.dir, images[0]);
    let pixels = cache.get(path);
    if (!pixels) {
      const t = await preprocessImageBytes(readFileSync(path), processor);
      if (t.channels !== shape[0] || t.height !== shape[1] || t.width !== shape[2])
        throw new TlabError(
          `${path}: preprocessed to ${t.channels}x${t.height}x${t.width}, the classifier takes ${shape.join('x')}`,
          "check the processor's size (preprocessor_config.json) against the model's image_size",
        );
      pixels = t.data;
      cache.set(path, pixels);
    }
    out.push({ uid: e.uid, label: labels[i], pixels });
  }
  return out;
}

function textExamples(
  tokenizer: TextTokenizer,
  examples: readonly TaskExample[],
  labels: readonly number[],
  file: string,
): ClassifierExample[] {
  return examples.map((e, i) => {
    const prompt = promptOf(e);
    if (prompt.some((m) => m.content.some((p) => p.type === 'image')))
      throw new TlabError(
        `${file}: data.task: example ${e.uid} has images; a sequence classifier reads text (use objective image-classifier)`,
      );
    return { uid: e.uid, label: labels[i], ids: classifierPromptIds(tokenizer, prompt) };
  });
}

/** LoRA on a classifier trains the adapters and the head (new heads start random), as PEFT's modules_to_save. */
function classifierStrategy(config: TrainConfig, body: 'encoder' | 'decoder'): StrategyConfig {
  const s = strategyOf(config);
  if (s.kind !== 'lora') return s;
  return { ...s, kind: 'components', components: { [body]: 'lora', head: 'full' } };
}

/** Share of the most frequent class (the accuracy of always answering it), or null without examples. */
function majorityRate(labels: readonly number[]): number | null {
  if (labels.length === 0) return null;
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return Math.max(...counts.values()) / labels.length;
}

/** What must not change for a resume (as resume-fingerprint.ts for LMs), plus the labels, head and processor. */
function classifierFingerprint(inputs: {
  config: TrainConfig;
  task: OpenedTask;
  prepared: PreparedClassifier;
  tokenizer: TextTokenizer | null;
  preprocess: PreprocessConfig | null;
}): { fingerprint: string; settings: Record<string, unknown> } {
  const config = JSON.parse(JSON.stringify(inputs.config)) as Record<string, unknown>;
  for (const path of RESUME_MAY_CHANGE) {
    const keys = path.split('.');
    let at: Record<string, unknown> | undefined = config;
    for (const k of keys.slice(0, -1)) at = at?.[k] as Record<string, unknown> | undefined;
    if (at) delete at[keys[keys.length - 1]];
  }
  const settings = JSON.parse(
    canonicalJson({
      config,
      data: inputs.task.manifest.splits,
      labels: inputs.task.labels ?? null,
      head: inputs.prepared.head,
      tokenizer: inputs.tokenizer ? tokenizerHash(inputs.tokenizer) : null,
      preprocess: inputs.preprocess,
      start_weights: inputs.prepared.weights
        ? weightsHash(inputs.prepared.weights)
        : 'initialised from the seed',
      model_config: inputs.prepared.loaded.config,
    }),
  ) as Record<string, unknown>;
  return { fingerprint: sha256Hex(canonicalJson(settings)), settings };
}

export async function runClassifierTraining(
  config: TrainConfig,
  options: RunTrainingOptions,
): Promise<ClassifierRunSummary> {
  const file = options.configFile;
  const kind = config.objective;
  if (kind === 'causal-lm') throw new Error('unreachable: a causal-lm config is not a classification run');
  if (config.model.adapter)
    throw new TlabError(
      `${file}: model.adapter: PEFT adapters are loaded onto language models, not classifiers`,
    );
  const task = openTask(config.data.task);
  const labels = task.labels;
  if (!labels?.length)
    throw new TlabError(
      `${file}: data.task: ${task.dir} has no labels; objective ${kind} needs a task built with label_column`,
    );
  if (labels.length < 2)
    throw new TlabError(
      `${file}: data.task: ${task.dir} has one label (${labels[0]}); a classifier needs two`,
    );
  const trainRows = await loadTaskSplit(task.dir, config.data.train_split);
  const evalSplit =
    config.data.eval_split && task.manifest.splits[config.data.eval_split] ? config.data.eval_split : null;
  const evalRows = evalSplit ? await loadTaskSplit(task.dir, evalSplit) : [];
  const trainLabels = labelIndices(task, trainRows, file);
  const evalLabels = labelIndices(task, evalRows, file);

  const text = kind === 'sequence-classifier';
  let prepared: PreparedClassifier;
  let tokenizer: TextTokenizer | null = null;
  if (config.model.from) {
    prepared = folderClassifier(kind, config.model.from, labels, file);
    if (text) tokenizer = await prepareTokenizer(config, trainRows, file, prepared.folder);
  } else {
    if (text) tokenizer = await prepareTokenizer(config, trainRows, file, null);
    prepared = scratchClassifier(
      kind,
      config.model.config!,
      labels,
      file,
      tokenizer ? { tokenizer, seqLen: config.data.seq_len! } : null,
    );
  }
  const { loaded } = prepared;
  const t = config.training;
  const micro = t.micro_batch_size ?? t.batch_size;
  let input: ClassifierInput;
  let trainExamples: ClassifierExample[];
  let evalExamples: ClassifierExample[];
  let preprocess: PreprocessConfig | null = null;
  let batcherInputs: { imageShape?: [number, number, number]; text?: { seqLen: number; padId: number } };
  if (loaded.kind === 'image-classifier') {
    const encoder = loaded.model.encoder;
    const shape: [number, number, number] = [encoder.numChannels, encoder.imageSize, encoder.imageSize];
    const processorFile = prepared.folder?.preprocessorConfig;
    preprocess = processorFile
      ? loadPreprocessorConfig(processorFile)
      : defaultClassifierPreprocessor(encoder);
    trainExamples = await imageExamples(task, trainRows, trainLabels, preprocess, shape, file);
    evalExamples = await imageExamples(task, evalRows, evalLabels, preprocess, shape, file);
    input = { kind: 'image', classifier: loaded.model, imageShape: shape };
    batcherInputs = { imageShape: shape };
  } else {
    const seqLen = config.data.seq_len!;
    const context = loaded.model.decoder.maxPositions;
    if (seqLen > context)
      throw new TlabError(
        `${file}: data.seq_len ${seqLen} exceeds the ${context} positions of ${config.model.from ?? 'model.config'}`,
      );
    if (loaded.model.decoder.vocabSize < tokenizer!.vocabSize)
      throw new TlabError(
        `${file}: ${config.model.from ?? 'model.config'}: the model embeds ${loaded.model.decoder.vocabSize} tokens, the tokenizer has ${tokenizer!.vocabSize}`,
      );
    trainExamples = textExamples(tokenizer!, trainRows, trainLabels, file);
    evalExamples = textExamples(tokenizer!, evalRows, evalLabels, file);
    input = { kind: 'text', classifier: loaded.model, seqLen };
    batcherInputs = { text: { seqLen, padId: classifierPadId(loaded.model, tokenizer!) } };
  }

  const trainSource = new ClassifierBatcher(trainExamples, {
    batchSize: micro,
    seed: config.seed,
    ...batcherInputs,
  });
  const evalSource = evalExamples.length
    ? new ClassifierBatcher(evalExamples, {
        batchSize: micro,
        seed: config.seed,
        ordered: true,
        ...batcherInputs,
      })
    : null;
  const { fingerprint, settings } = classifierFingerprint({ config, task, prepared, tokenizer, preprocess });
  const runDirs = options.paths ?? {
    checkpoints: join(config.out, 'checkpoints', config.name),
    logs: join(config.out, 'logs', config.name),
    model: join(config.out, 'models', config.name),
  };
  const body = loaded.kind === 'image-classifier' ? 'encoder' : 'decoder';
  const encoderPrefix =
    loaded.kind === 'image-classifier' && loaded.model.encoder.modelType === 'vit' ? 'vit' : 'vision_model';
  const headPrefix = prepared.headPrefix;
  const result = await train({
    checkpointDir: runDirs.checkpoints,
    logDir: runDirs.logs,
    objective: classifierObjective(input, micro, t.label_smoothing),
    initialWeights: prepared.weights,
    // LoRA adapters and a new head start from the seed; everything else must come from the folder.
    allowInit: (name) =>
      name.includes('.lora_') || (prepared.head === 'new' && name.startsWith(`${headPrefix}.`)),
    componentOf,
    componentPrefixes:
      body === 'encoder' ? { encoder: encoderPrefix, head: headPrefix } : { decoder: '', head: headPrefix },
    train: trainSource,
    eval: evalSource
      ? { source: evalSource, batches: Math.min(t.eval_batches, evalSource.batchesPerEpoch) }
      : null,
    strategy: classifierStrategy(config, body),
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
  });
  if (result.step >= t.max_steps)
    saveClassifier(runDirs.model, prepared, result.mergedWeights, labels, config, tokenizer, preprocess);
  const plot = await plotLearningCurve(runDirs.logs, config.name);
  return {
    name: config.name,
    objective: kind,
    steps: result.step,
    resumedFrom: result.resumedFrom,
    stepSeconds: result.stepSeconds,
    ...finalMetrics(runDirs.logs, result.losses, result.evals),
    labels: [...labels],
    head: prepared.head,
    examples: { train: trainExamples.length, eval: evalExamples.length },
    chance: majorityRate(evalLabels),
    evalSplit: evalSplit ? { name: evalSplit, rows: evalExamples.length } : null,
    baseline: null, // `chance` is the classifier's (majority class)
    unknownTokens: [],
    // A classifier's LoRA is merged into the saved weights; a PEFT adapter would also need its head (not written).
    paths: { ...runDirs, adapter: null, plot },
  };
}

/**
 * The final folder: config.json with id2label/label2id of the task's labels, the merged weights, and the files
 * that make it usable — the processor an image classifier was trained with (preprocessor_config.json), the
 * tokenizer of a sequence classifier, and the starting folder's other auxiliary files.
 */
function saveClassifier(
  dir: string,
  prepared: PreparedClassifier,
  weights: ReadonlyMap<string, HostTensor>,
  labels: readonly string[],
  config: TrainConfig,
  tokenizer: TextTokenizer | null,
  preprocess: PreprocessConfig | null,
): void {
  const files = mkdtempSync(join(tmpdir(), 'tlab-classifier-files-'));
  try {
    const copyFrom = (from: string | null | undefined) => {
      if (!from) return;
      for (const f of AUXILIARY_FILES)
        if (existsSync(join(from, f))) copyFileSync(join(from, f), join(files, f));
    };
    copyFrom(prepared.folder?.dir);
    copyFrom(config.tokenizer.path);
    const saver = tokenizer as (TextTokenizer & { save?: (d: string) => void }) | null;
    // A tokenizer built from the data is written (over a folder's); a given one was copied above.
    if (saver?.save && !config.tokenizer.path && (config.tokenizer.build || !prepared.folder?.tokenizer))
      saver.save(files);
    if (preprocess && !existsSync(join(files, 'preprocessor_config.json')))
      writeJsonAtomic(join(files, 'preprocessor_config.json'), preprocessorJson(preprocess));
    saveModelFolder(dir, prepared.loaded, weights, { filesFrom: files, labels });
  } finally {
    rmSync(files, { recursive: true, force: true });
  }
}
