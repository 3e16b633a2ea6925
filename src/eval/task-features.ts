/**
 * Features of a built task's examples from one of this project's models, for transferability estimation:
 * decoders read the prompt (the conversation up to the answer, through the chat template when the tokenizer has
 * one) and pool a layer's hidden states — a VLM reads it with the example's images, so its states after the image
 * tokens are image-conditioned; vision encoders (and a VLM's vision tower, with `source: 'vision'`) read the
 * example's image and pool the CLS token, the mean over patches, or the model's pooled output. Labels are the
 * task's class indices; `kind` says which features were taken. With `sourceProbs`, also the source model's
 * probabilities for LEEP/NCE (source-probs.ts): a classifier's head softmax, a decoder's next-token distribution
 * at the prompt's last token (from the same forward pass as its features).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { preprocessImageBytes } from '../data/images/preprocess.ts';
import { loadTaskSplit, openTask } from '../data/read.ts';
import type { TaskExample } from '../data/task-format.ts';
import { Graph } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { Program } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { ModelFolder } from '../models/hf/model-folder.ts';
import type { VisionEncoder } from '../models/types.ts';
import { expandImagePlaceholders } from '../models/vlm.ts';
import { ParamBuilder } from '../nn/module.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { taskUnknownTokenRate, type UnknownTokenRate } from '../train/unknown-tokens.ts';
import { TlabError } from '../util/errors.ts';
import { ClassifierRunner, classifierPromptIds, isClassifierFolder } from './classifier-forward.ts';
import { ForwardRunner } from './forward.ts';
import { ImagePixels, visionPreprocessorFor } from './images.ts';
import {
  DEFAULT_TOP_K,
  headProbs,
  resolveSourceProbsMode,
  type SourceProbs,
  type SourceProbsRequest,
  topKProbs,
  vocabularyProbs,
} from './source-probs.ts';
import { encodeTaskPrompt, promptMessages } from './task-prompt.ts';

export type FeaturePooling = 'pooled' | 'cls' | 'mean' | 'last';

export interface TaskFeatureOptions {
  split: string;
  pooling: FeaturePooling;
  /** Hidden-state index as Hugging Face counts them (0 = embeddings); negative from the end. Default −1. */
  layer?: number;
  batchSize?: number;
  /** Use at most this many examples (in file order). */
  limit?: number;
  /** For a VLM: the decoder's states over the prompt with its images (default), or the vision tower's features. */
  source?: FeatureSource;
  /** Source-model probabilities for LEEP/NCE (default none; see source-probs.ts). */
  sourceProbs?: SourceProbsRequest;
}

export type FeatureSource = 'decoder' | 'vision';

export interface TaskFeatures {
  /** [N, D] float32 */
  features: HostTensor;
  /** Class index of each example (task manifest's labels). */
  labels: Int32Array;
  classes: string[];
  uids: string[];
  /** Prompts cut to the model's context (their start dropped: the question is at the end). */
  truncated: number;
  /** Which features these are, in words (e.g. "VLM decoder hidden state 2, last prompt token, with 1 image per prompt"). */
  kind: string;
  /** The source model's probabilities, row i for example i, or null (`sourceProbsNote` says why). */
  sourceProbs: SourceProbs | null;
  sourceProbsNote: string | null;
  /** Unknown-token rate of the split under the model's tokenizer (null for image models, which read pixels). */
  unknownTokens: UnknownTokenRate | null;
}

/** Token ids of each example's prompt, cut from the left to `max` tokens. */
export function taskPrompts(
  tokenizer: TextTokenizer,
  examples: readonly TaskExample[],
  max: number,
  taskDir = '.',
): { ids: number[][]; truncated: number; dropped: number } {
  let truncated = 0;
  let dropped = 0;
  const ids = examples.map((e) => {
    // A text model reads the text parts; images are counted, and named in the features' kind.
    const encoded = encodeTaskPrompt(tokenizer, e, taskDir, { images: 'drop' });
    dropped += encoded.dropped;
    const p = encoded.ids;
    if (p.length <= max) return p;
    truncated += 1;
    return p.slice(p.length - max);
  });
  return { ids, truncated, dropped };
}

/** A VLM's prompts with their images: ids with placeholders expanded, and each prompt's pixels. */
async function vlmPrompts(
  folder: ModelFolder & { kind: 'vlm' },
  tokenizer: TextTokenizer,
  examples: readonly TaskExample[],
  taskDir: string,
): Promise<{ ids: number[][]; images: Float32Array[][]; perPrompt: number }> {
  const vlm = folder.model;
  const pixels = new ImagePixels(vlm.encoder, visionPreprocessorFor(folder.preprocessorConfig, vlm.encoder));
  const ids: number[][] = [];
  const images: Float32Array[][] = [];
  let perPrompt = 0;
  for (const e of examples) {
    const p = encodeTaskPrompt(tokenizer, e, taskDir);
    const expanded = expandImagePlaceholders(p.ids, vlm.imageTokenId, vlm.imageTokens);
    const placeholders = p.ids.filter((id) => id === vlm.imageTokenId).length;
    if (placeholders !== p.images.length)
      throw new TlabError(
        `example ${e.uid}: ${p.images.length} image(s) but ${placeholders} image placeholder(s) in the rendered prompt`,
        "the chat template must render each image part as the tokenizer's image token",
      );
    if (expanded.length > vlm.maxPositions)
      throw new TlabError(
        `example ${e.uid}: the prompt with its images is ${expanded.length} tokens, more than the model's context of ${vlm.maxPositions}`,
      );
    ids.push(expanded);
    images.push(await Promise.all(p.images.map((f) => pixels.file(f))));
    perPrompt = Math.max(perPrompt, p.images.length);
  }
  return { ids, images, perPrompt };
}

async function decoderFeatures(
  folder: ModelFolder,
  examples: readonly TaskExample[],
  taskDir: string,
  options: TaskFeatureOptions,
  /** Also the next-token logits at each prompt's last token, [N, V]. */
  lastLogits = false,
): Promise<{ features: HostTensor; truncated: number; kind: string; logits: Float32Array | null }> {
  if (folder.kind !== 'causal-lm' && folder.kind !== 'vlm' && folder.kind !== 'sequence-classifier')
    throw new Error('unreachable');
  const decoder = folder.kind === 'sequence-classifier' ? folder.model.decoder : folder.model;
  if (!folder.tokenizer)
    throw new TlabError(`${folder.dir}: no tokenizer.json; text features need the model's tokenizer`);
  const pooling = options.pooling === 'cls' ? 'first' : options.pooling;
  if (pooling === 'pooled')
    throw new TlabError(`pooling 'pooled' is for vision encoders; a ${folder.kind} takes last, mean or cls`);
  const weights = folder.kind === 'sequence-classifier' ? stripPrefix(folder.weights) : folder.weights;
  const runner = new ForwardRunner(decoder, weights, {
    padId: folder.tokenizer.padId ?? folder.tokenizer.eosId ?? 0,
  });
  const layer = options.layer ?? -1;
  const where = { last: 'last prompt token', mean: 'mean over prompt tokens', first: 'first token' }[pooling];
  try {
    if (folder.kind === 'vlm') {
      const { ids, images, perPrompt } = await vlmPrompts(folder, folder.tokenizer, examples, taskDir);
      const out = await pooledAndLogits(runner, ids, images, pooling, layer, options.batchSize, lastLogits);
      const kind =
        perPrompt > 0
          ? `VLM decoder hidden state ${layer}, ${where}, prompts with their images (up to ${perPrompt} per prompt)`
          : `VLM decoder hidden state ${layer}, ${where}, text-only prompts (the examples have no images)`;
      return { ...out, truncated: 0, kind };
    }
    const { ids, truncated, dropped } = taskPrompts(
      folder.tokenizer,
      examples,
      decoder.maxPositions,
      taskDir,
    );
    const out = await pooledAndLogits(runner, ids, null, pooling, layer, options.batchSize, lastLogits);
    const kind = `${folder.kind} decoder hidden state ${layer}, ${where}${dropped ? `, text parts only (${dropped} image(s) left out: a text model)` : ''}`;
    return { ...out, truncated, kind };
  } finally {
    await runner.release();
  }
}

/**
 * Pooled features [N, D] batch by batch (as ForwardRunner.features), and with `lastLogits` each row's logits at
 * its last token [N, V] from the same pass.
 */
async function pooledAndLogits(
  runner: ForwardRunner,
  ids: readonly (readonly number[])[],
  images: readonly (readonly Float32Array[])[] | null,
  pooling: 'last' | 'mean' | 'first',
  layer: number,
  batchSize = 16,
  lastLogits = false,
): Promise<{ features: HostTensor; logits: Float32Array | null }> {
  const n = ids.length;
  const d = runner.model.hiddenSize;
  const v = runner.model.vocabSize;
  const features = new Float32Array(n * d);
  const logits = lastLogits ? new Float32Array(n * v) : null;
  for (let start = 0; start < n; start += batchSize) {
    const rows = ids.slice(start, start + batchSize);
    const r = await runner.run(
      { ids: rows, images: images?.slice(start, start + batchSize) },
      { pooled: [pooling], poolLayers: [layer], lastLogits },
    );
    features.set([...r.pooled!.get(pooling)!.values()][0].data as Float32Array, start * d);
    logits?.set(r.lastLogits!.data as Float32Array, start * v);
  }
  return { features: { dtype: 'float32', shape: [n, d], data: features }, logits };
}

/** A classifier's head probabilities over the examples (images, or the prompts' text as in training). */
async function classifierProbs(
  folder: ModelFolder,
  examples: readonly TaskExample[],
  taskDir: string,
  batchSize?: number,
): Promise<SourceProbs> {
  if (!isClassifierFolder(folder)) throw new Error('unreachable: head probabilities of a non-classifier');
  const runner = new ClassifierRunner(folder, { batchSize });
  try {
    let logits: Float32Array;
    if (folder.kind === 'image-classifier') {
      const pixels = await Promise.all(
        examples.map((e) => {
          const image = promptMessages(e)
            .flatMap((m) => m.content)
            .find((p) => p.type === 'image');
          if (image?.type !== 'image')
            throw new TlabError(`example ${e.uid} has no image; an image classifier needs one`);
          return runner.pixels!.file(join(taskDir, image.image));
        }),
      );
      logits = await runner.imageLogits(pixels);
    } else {
      const tokenizer = runner.tokenizer();
      logits = await runner.textLogits(
        examples.map((e) => classifierPromptIds(tokenizer, promptMessages(e))),
      );
    }
    return headProbs(logits, runner.labels);
  } finally {
    await runner.release();
  }
}

/** A sequence classifier's decoder parameters are its own names (heads add `score.*`, which the decoder ignores). */
function stripPrefix(weights: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  return new Map([...weights].filter(([n]) => !n.startsWith('score.')));
}

async function visionFeatures(
  folder: ModelFolder,
  examples: readonly TaskExample[],
  taskDir: string,
  options: TaskFeatureOptions,
): Promise<HostTensor> {
  if (folder.kind !== 'vision-encoder' && folder.kind !== 'image-classifier' && folder.kind !== 'vlm')
    throw new Error('unreachable');
  const encoder: VisionEncoder = folder.kind === 'vision-encoder' ? folder.model : folder.model.encoder;
  if (!folder.preprocessorConfig && folder.kind !== 'vlm')
    throw new TlabError(
      `${folder.dir}: no preprocessor_config.json; image features need the model's processor`,
    );
  const processor = visionPreprocessorFor(folder.preprocessorConfig, encoder);
  const batch = options.batchSize ?? 16;
  const [c, s] = [encoder.numChannels, encoder.imageSize];
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const pixels = graph.input('pixel_values', 'float32', [batch, c, s, s]);
  const out =
    folder.kind === 'vlm'
      ? pb.scope('vision_tower', () => encoder.forward(pb, pixels))
      : encoder.forward(pb, pixels);
  const layers = out.hiddenStates.length;
  const layer = (options.layer ?? -1) < 0 ? layers + (options.layer ?? -1) : options.layer!;
  if (layer < 0 || layer >= layers)
    throw new TlabError(
      `layer ${options.layer} is out of range; ${folder.dir} has hidden states 0..${layers - 1}`,
    );
  const h = options.layer === undefined || options.layer === -1 ? out.lastHidden : out.hiddenStates[layer];
  const pooled =
    options.pooling === 'pooled'
      ? out.pooled
      : options.pooling === 'cls'
        ? T.squeeze(T.slice(h, [1], [0], [1]), [1])
        : options.pooling === 'mean'
          ? T.reduceMean(T.slice(h, [1], [1], [h.shape[1]]), [1])
          : null;
  if (!pooled)
    throw new TlabError(
      `pooling '${options.pooling}' is for text; a vision encoder takes pooled, cls or mean`,
    );
  const weights = new Map([...pb.specs.keys()].map((n) => [n, folder.weights.get(n)!]));
  const program = await Program.compile(graph, { outputs: { features: pooled }, bind: weights });
  const d = pooled.shape[1];
  const data = new Float32Array(examples.length * d);
  try {
    for (let start = 0; start < examples.length; start += batch) {
      const input = new Float32Array(batch * c * s * s);
      const rows = examples.slice(start, start + batch);
      for (const [i, e] of rows.entries()) {
        const image = e.messages.flatMap((m) => m.content).find((p) => p.type === 'image');
        if (image?.type !== 'image')
          throw new TlabError(`example ${e.uid} has no image; a vision encoder needs one`);
        const t = await preprocessImageBytes(readFileSync(join(taskDir, image.image)), processor);
        if (t.data.length !== c * s * s)
          throw new TlabError(
            `${image.image}: preprocessed to ${t.channels}x${t.height}x${t.width}, the encoder takes ${c}x${s}x${s}`,
          );
        input.set(t.data, i * c * s * s);
      }
      const r = await program.run({
        pixel_values: { dtype: 'float32', shape: [batch, c, s, s], data: input },
      });
      data.set((r.features.data as Float32Array).subarray(0, rows.length * d), start * d);
    }
  } finally {
    await program.release();
  }
  return { dtype: 'float32', shape: [examples.length, d], data };
}

/** Features and class labels of a task split from a loaded model folder. */
export async function extractTaskFeatures(
  folder: ModelFolder,
  taskDir: string,
  options: TaskFeatureOptions,
): Promise<TaskFeatures> {
  const task = openTask(taskDir);
  if (!task.labels?.length) {
    throw new TlabError(
      `${task.dir}/manifest.json: the task has no labels (set label_column when building it); metrics need classes`,
    );
  }
  let examples = await loadTaskSplit(task.dir, options.split);
  if (options.limit !== undefined) examples = examples.slice(0, options.limit);
  if (examples.length === 0) throw new TlabError(`${task.dir}: split '${options.split}' is empty`);
  const labels = Int32Array.from(
    examples.map((e) => {
      const i = task.labelIndex(e);
      if (i < 0)
        throw new TlabError(`${task.dir}: example ${e.uid} has no label among ${task.labels!.join(', ')}`);
      return i;
    }),
  );
  const vision =
    folder.kind === 'vision-encoder' ||
    folder.kind === 'image-classifier' ||
    (folder.kind === 'vlm' && options.source === 'vision');
  if (options.source === 'vision' && !vision)
    throw new TlabError(`source 'vision' is for VLMs; ${folder.dir} holds a ${folder.kind}`);
  const decoder = folder.kind === 'causal-lm' || (folder.kind === 'vlm' && !vision);
  const probsMode = resolveSourceProbsMode(
    options.sourceProbs ?? { mode: 'none' },
    folder.kind,
    vision && folder.kind !== 'image-classifier',
    decoder ? (folder.model as { vocabSize: number }).vocabSize : null,
    folder.dir,
  );
  const wantLogits = probsMode.mode === 'vocab' || probsMode.mode === 'top-k';
  const { features, truncated, kind, logits } = vision
    ? {
        features: await visionFeatures(folder, examples, task.dir, options),
        truncated: 0,
        kind: `${folder.kind === 'vlm' ? 'VLM vision tower' : folder.kind} ${options.pooling} features of layer ${options.layer ?? -1}`,
        logits: null,
      }
    : await decoderFeatures(folder, examples, task.dir, options, wantLogits);
  let sourceProbs: SourceProbs | null = null;
  if (probsMode.mode === 'head')
    sourceProbs = await classifierProbs(folder, examples, task.dir, options.batchSize);
  else if (logits && probsMode.mode === 'vocab')
    sourceProbs = vocabularyProbs(logits, logits.length / examples.length);
  else if (logits && probsMode.mode === 'top-k')
    sourceProbs = topKProbs(
      logits,
      logits.length / examples.length,
      options.sourceProbs?.topK ?? DEFAULT_TOP_K,
      folder.tokenizer,
    );
  return {
    features,
    labels,
    classes: task.labels,
    uids: examples.map((e) => e.uid),
    truncated,
    kind,
    sourceProbs,
    sourceProbsNote: probsMode.reason,
    unknownTokens:
      !vision && folder.tokenizer ? taskUnknownTokenRate(folder.tokenizer, options.split, examples) : null,
  };
}
