/**
 * The classifier a classification run trains: built from `model.config` (a ViT / CLIP vision config, or a GPT-2 /
 * Llama / Qwen2 config, with a head for the task's labels), or loaded from a model folder. A folder's head is
 * kept when its id2label names the task's classes in the task's order, its rows are reordered when it names the
 * same classes in another order, and otherwise a NEW head is initialised from the run's seed for the task's
 * label set (a vision encoder or causal-LM folder always gets a new head): the body's weights are the folder's.
 */
import { join } from 'node:path';
import type { PreprocessConfig } from '../data/images/preprocess.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { type HfConfig, parseHfConfig } from '../models/hf/configs.ts';
import { loadModelFolder, type ModelFolder } from '../models/hf/model-folder.ts';
import { buildModel, kindsOf, type LoadedModel, parameterSpecs } from '../models/hf/registry.ts';
import type { ImageClassifier, ModelKind, SequenceClassifier, VisionEncoder } from '../models/types.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import { readJsonFile } from '../util/json-file.ts';

export type ClassifierKind = 'image-classifier' | 'sequence-classifier';

/** What happened to the classification head: trained from scratch, kept, rows reordered, or new for this task. */
export type HeadInit = 'scratch' | 'kept' | 'reordered' | 'new';

export type LoadedClassifier = (
  | { kind: 'image-classifier'; model: ImageClassifier }
  | { kind: 'sequence-classifier'; model: SequenceClassifier }
) & { config: HfConfig };

export interface PreparedClassifier {
  loaded: LoadedClassifier;
  /** Starting weights under the model's parameter names (the head left out when it is new), or null (scratch). */
  weights: Map<string, HostTensor> | null;
  head: HeadInit;
  /** The head's parameter-name prefix (`classifier` or `score`). */
  headPrefix: string;
  /** The folder it came from (its tokenizer, processor and other files), or null. */
  folder: ModelFolder | null;
}

/** The folder's class names in index order (id2label), or null when its config names none. */
export function folderLabels(config: Pick<HfConfig, 'id2label'>): string[] | null {
  const entries = Object.entries(config.id2label ?? {});
  if (entries.length === 0) return null;
  const byIndex = new Map(entries.map(([i, name]) => [Number(i), name]));
  const names = Array.from({ length: entries.length }, (_, i) => byIndex.get(i));
  return names.every((n) => n !== undefined) ? (names as string[]) : null;
}

/** id2label / label2id of a label list. */
export function labelConfig(labels: readonly string[]): Pick<HfConfig, 'id2label' | 'label2id'> {
  return {
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
  };
}

const BODY_KIND: Record<ClassifierKind, ModelKind> = {
  'image-classifier': 'vision-encoder',
  'sequence-classifier': 'causal-lm',
};
const HEAD_PREFIX: Record<ClassifierKind, string> = {
  'image-classifier': 'classifier',
  'sequence-classifier': 'score',
};
const WHAT: Record<ClassifierKind, string> = {
  'image-classifier': 'a ViT or CLIP vision model',
  'sequence-classifier': 'a GPT-2, Llama or Qwen2 model',
};

function asClassifier(loaded: LoadedModel, config: HfConfig): LoadedClassifier {
  if (loaded.kind === 'image-classifier' || loaded.kind === 'sequence-classifier')
    return { ...loaded, config } as LoadedClassifier;
  throw new Error(`unreachable: built a ${loaded.kind} as a classifier`);
}

/** A classifier built from `model.config` with a head for `labels` (weights initialised from the seed). */
export function scratchClassifier(
  kind: ClassifierKind,
  modelConfig: Record<string, unknown>,
  labels: readonly string[],
  file: string,
  text: { tokenizer: TextTokenizer; seqLen: number } | null,
): PreparedClassifier {
  const c: Record<string, unknown> = { ...modelConfig, ...labelConfig(labels) };
  if (text) {
    // Vocabulary, context and padding from the tokenizer and data unless the config sets them.
    c.vocab_size ??= text.tokenizer.vocabSize;
    if (c.model_type === 'gpt2') c.n_positions ??= text.seqLen;
    else c.max_position_embeddings ??= text.seqLen;
    if (c.pad_token_id === undefined && text.tokenizer.padId !== undefined)
      c.pad_token_id = text.tokenizer.padId;
  }
  const hf = parseHfConfig(c, file, { prefix: 'model.config', strict: true });
  if (!kindsOf(hf.model_type as Parameters<typeof kindsOf>[0]).includes(kind))
    throw new TlabError(
      `${file}: model.config.model_type: a ${hf.model_type} cannot be a ${kind}; objective ${kind} takes ${WHAT[kind]}`,
    );
  const loaded = asClassifier(buildModel(hf, kind, { numLabels: labels.length }), hf);
  return { loaded, weights: null, head: 'scratch', headPrefix: HEAD_PREFIX[kind], folder: null };
}

/** A classifier for `labels` from a model folder (see the module comment for what happens to its head). */
export function folderClassifier(
  kind: ClassifierKind,
  dir: string,
  labels: readonly string[],
  file: string,
): PreparedClassifier {
  const configPath = join(dir, 'config.json');
  const config = parseHfConfig(readJsonFile(configPath), configPath);
  const type = config.model_type as Parameters<typeof kindsOf>[0];
  if (!kindsOf(type).includes(kind))
    throw new TlabError(
      `${file}: model.from: ${dir} holds a ${type} model; objective ${kind} fine-tunes ${WHAT[kind]}`,
    );
  const prefix = HEAD_PREFIX[kind];
  const own = folderLabels(config);
  const sameSet =
    own !== null &&
    own.length === labels.length &&
    [...own].sort().join('\0') === [...labels].sort().join('\0');
  if (sameSet) {
    const folder = loadModelFolder(dir, { kind });
    // The head's tensors are in the folder (a vision encoder or LM folder that names labels has none).
    if (folder.report.initialized.length === 0) {
      const weights = new Map(folder.weights);
      const order = labels.map((l) => own.indexOf(l));
      const reordered = order.some((from, to) => from !== to);
      if (reordered)
        for (const [name, t] of folder.weights)
          if (name.startsWith(`${prefix}.`)) weights.set(name, permuteRows(t, order));
      return {
        loaded: asClassifier(folder, { ...folder.config, ...labelConfig(labels) }),
        weights,
        head: reordered ? 'reordered' : 'kept',
        headPrefix: prefix,
        folder,
      };
    }
  }
  // A new head: the folder's body (its own head's tensors dropped), and a classifier built for the task's labels.
  const folder = loadModelFolder(dir, { kind: BODY_KIND[kind] });
  const hf = { ...folder.config, ...labelConfig(labels) } as HfConfig;
  delete (hf as { num_labels?: number }).num_labels;
  const loaded = asClassifier(buildModel(hf, kind, { numLabels: labels.length }), hf);
  const weights = new Map<string, HostTensor>();
  for (const name of parameterSpecs(loaded).keys()) {
    const t = folder.weights.get(name);
    if (t) weights.set(name, t);
    else if (!name.startsWith(`${prefix}.`))
      throw new TlabError(`${dir}: the ${type} weights lack '${name}', which the ${kind} needs`);
  }
  return { loaded, weights, head: 'new', headPrefix: prefix, folder };
}

/** Rows of a [C, ...] tensor in a new order: row i of the result is row order[i] of t. */
function permuteRows(t: HostTensor, order: readonly number[]): HostTensor {
  const data = t.data as Float32Array;
  const width = data.length / t.shape[0];
  const out = new Float32Array(data.length);
  order.forEach((from, to) => {
    out.set(data.subarray(from * width, (from + 1) * width), to * width);
  });
  return { dtype: t.dtype, shape: [...t.shape], data: out };
}

/** The vision encoder of an image classifier, or null for a sequence classifier. */
export function encoderOf(loaded: LoadedClassifier): VisionEncoder | null {
  return loaded.kind === 'image-classifier' ? loaded.model.encoder : null;
}

/**
 * The processor of a classifier trained here from scratch (or from a folder without preprocessor_config.json):
 * resize to the encoder's size with bicubic filtering, scale to [-1, 1], as Hugging Face's ViTImageProcessor
 * defaults (the same as eval/images.ts's defaultVisionPreprocessor, which inference falls back to).
 */
export function defaultClassifierPreprocessor(encoder: VisionEncoder): PreprocessConfig {
  const size = encoder.imageSize;
  return {
    resize: { height: size, width: size },
    resample: 3,
    rescale: 1 / 255,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  };
}

/**
 * The padding id of a sequence classifier's batches: its config's pad_token_id when set (the head reads the last
 * id that differs from it, as Hugging Face's), else the tokenizer's pad, EOS or 0 (the attention mask then decides).
 */
export function classifierPadId(model: SequenceClassifier, tokenizer: TextTokenizer): number {
  return model.padTokenId ?? tokenizer.padId ?? tokenizer.eosId ?? 0;
}
