/**
 * Hugging Face model folders in and out. `loadModelFolder(dir)` reads config.json, the safetensors weights
 * (single file or sharded index), tokenizer.json when present, builds the model and checks every parameter
 * against the file (names, shapes); `saveModelFolder` writes a folder that transformers'
 * `AutoModelFor*.from_pretrained` loads: config.json with `architectures`/`model_type`/`torch_dtype`,
 * model.safetensors (sharded above a size limit) with HF keys, and the tokenizer/processor files.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type HostTensor, toFloat32, toHalf } from '../../engine/tensor.ts';
import { initTensor, type ParamSpec } from '../../nn/module.ts';
import type { HfTextTokenizer } from '../../tokenize/hf-tokenizer.ts';
import { loadTokenizer } from '../../tokenize/hf-tokenizer.ts';
import { tempPathFor, writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { readJsonFile } from '../../util/json-file.ts';
import type { ModelKind } from '../types.ts';
import {
  type CommonConfigFields,
  type HfConfig,
  type ModelType,
  numLabelsOf,
  parseHfConfig,
} from './configs.ts';
import { closestNames, fileKeyOf, internalCandidates, isIgnored, nameRules } from './names.ts';
import {
  ARCHITECTURES,
  buildModel,
  defaultKind,
  kindFromArchitectures,
  kindsOf,
  type LoadedModel,
  parameterSpecs,
} from './registry.ts';
import { readWeightIndex, readWeights, removeStaleWeights, writeWeights } from './weight-files.ts';

export interface LoadModelOptions {
  /**
   * Build as this kind instead of the folder's: causal-lm ↔ sequence-classifier, vision-encoder ↔
   * image-classifier. The other head's tensors are dropped and the new head is initialised (seeded).
   */
  kind?: ModelKind;
  /** Label count for a new classification head (default: the config's id2label / num_labels, else 2). */
  numLabels?: number;
  /** Seed for newly initialised head parameters (default 0). */
  seed?: number;
  /** Load tokenizer.json when present (default true). */
  tokenizer?: boolean;
  /** List tensors the model does not use in `report.unexpected` instead of failing. */
  allowUnexpected?: boolean;
}

export interface LoadReport {
  /** Checkpoint keys that are known non-parameters (GPT-2 mask buffers, CLIP position_ids, a tied lm_head...). */
  ignored: string[];
  /** Checkpoint keys of a head the requested kind does not have (lm_head when loading as a classifier...). */
  dropped: string[];
  /** Parameters absent from the folder and initialised (a new classification head). */
  initialized: string[];
  /** Checkpoint keys nothing uses (only with allowUnexpected). */
  unexpected: string[];
}

/** A loaded folder: the model (tagged by kind), its config, float32 weights under the model's parameter names. */
export type ModelFolder = LoadedModel & {
  dir: string;
  config: HfConfig;
  weights: Map<string, HostTensor>;
  /** The parameters the model declares (name, shape, init). */
  specs: Map<string, ParamSpec>;
  tokenizer: HfTextTokenizer | null;
  /** preprocessor_config.json when the folder has one (parse it with data/images' loadPreprocessorConfig). */
  preprocessorConfig: string | null;
  report: LoadReport;
};

/** How Qwen2-VL's chat template writes an image (what its processor then expands to the image's tokens). */
const QWEN2_VL_IMAGE = { token: '<|image_pad|>', before: '<|vision_start|>', after: '<|vision_end|>' };

export function loadModelFolder(dir: string, options: LoadModelOptions = {}): ModelFolder {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new TlabError(`${dir}: model folder not found`);
  const configPath = join(dir, 'config.json');
  let config = parseHfConfig(readJsonFile(configPath), configPath);
  const type = config.model_type as ModelType;
  const index = readWeightIndex(dir);
  const fileKeys = [...index.entries.keys()];
  const folderKind = kindFromArchitectures(config) ?? inferKind(type, fileKeys);
  const kind = options.kind ?? folderKind;
  if (!kindsOf(type).includes(kind))
    throw new TlabError(
      `${configPath}: model_type '${type}' cannot be loaded as a ${kind}; valid: ${kindsOf(type).join(', ')}`,
    );
  if (options.numLabels !== undefined && options.numLabels !== numLabelsOf(config))
    config = { ...config, ...labelFields(options.numLabels) };
  const loaded = withFileContext(configPath, () => buildModel(config, kind));
  const specs = parameterSpecs(loaded);
  const rules = nameRules(kind, config);
  // The folder's own kind, to tell a head we drop on purpose from a stray tensor.
  const folderSpecs = folderKind === kind ? specs : parameterSpecs(buildModel(config, folderKind));
  const folderRules = nameRules(folderKind, config);

  const report: LoadReport = { ignored: [], dropped: [], initialized: [], unexpected: [] };
  const fileOf = new Map<string, string>(); // internal name → checkpoint key
  for (const key of fileKeys) {
    const internal = internalCandidates(rules, key).find((n) => specs.has(n));
    if (internal) {
      const previous = fileOf.get(internal);
      if (previous)
        throw new TlabError(
          `${index.source}: tensors '${previous}' and '${key}' both hold parameter '${internal}'`,
        );
      fileOf.set(internal, key);
    } else if (isIgnored(rules, key)) report.ignored.push(key);
    else if (
      internalCandidates(folderRules, key).some((n) => folderSpecs.has(n)) ||
      isIgnored(folderRules, key)
    )
      report.dropped.push(key);
    else report.unexpected.push(key);
  }
  for (const [name, spec] of specs) {
    const key = fileOf.get(name);
    if (key === undefined) {
      if (!folderSpecs.has(name)) {
        report.initialized.push(name);
        continue;
      }
      const wanted = fileKeyOf(rules, name);
      throw new TlabError(
        `${index.source}: missing tensor '${wanted}' (${shapeText(spec.shape)}, parameter '${name}' of this ${type} ${kind})`,
        `closest names in the weights: ${closestNames(wanted, fileKeys).join(', ') || '(none)'}`,
      );
    }
    const entry = index.entries.get(key)!;
    if (entry.shape.length !== spec.shape.length || entry.shape.some((d, i) => d !== spec.shape[i]))
      throw new TlabError(
        `${entry.file}: tensor '${key}' has shape ${shapeText(entry.shape)} but ${basename(configPath)} implies ${shapeText(spec.shape)}`,
        `parameter '${name}' of this ${type} ${kind}`,
      );
    if (!['float32', 'float16', 'bfloat16', 'float64'].includes(entry.dtype))
      throw new TlabError(
        `${entry.file}: tensor '${key}' has dtype ${entry.dtype}; parameters must be floating point`,
      );
  }
  if (report.unexpected.length && !options.allowUnexpected) {
    const first = report.unexpected[0];
    throw new TlabError(
      `${index.entries.get(first)!.file}: unexpected tensor '${first}' (${report.unexpected.length} in all) that this ${type} ${kind} does not use`,
      `closest parameter names: ${closestNames(
        first,
        [...specs.keys()].map((n) => fileKeyOf(rules, n)),
      ).join(', ')}; pass allowUnexpected to ignore them`,
    );
  }

  const raw = readWeights(index, fileOf.values());
  const weights = new Map<string, HostTensor>();
  for (const [name, key] of fileOf) weights.set(name, toFloat32(raw.get(key)!));
  for (const name of report.initialized) weights.set(name, initTensor(specs.get(name)!, options.seed ?? 0));

  const tokenizerPath = join(dir, 'tokenizer.json');
  const preprocessorPath = join(dir, 'preprocessor_config.json');
  return {
    ...loaded,
    dir,
    config,
    weights,
    specs,
    tokenizer:
      options.tokenizer !== false && existsSync(tokenizerPath)
        ? loadTokenizer(dir, config.model_type === 'qwen2_vl' ? { imagePlaceholder: QWEN2_VL_IMAGE } : {})
        : null,
    preprocessorConfig: existsSync(preprocessorPath) ? preprocessorPath : null,
    report,
  } as ModelFolder;
}

function inferKind(type: ModelType, keys: readonly string[]): ModelKind {
  if (kindsOf(type).includes('sequence-classifier') && keys.some((k) => /^score\./.test(k)))
    return 'sequence-classifier';
  if (kindsOf(type).includes('image-classifier') && keys.some((k) => /^classifier\./.test(k)))
    return 'image-classifier';
  return defaultKind(type);
}

/** Re-throws a model builder's config error with the config file in front. */
function withFileContext<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TlabError && !error.message.startsWith(file))
      throw new TlabError(`${file}: ${error.message}`, error.details);
    throw error;
  }
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function labelFields(
  numLabels: number,
  names?: readonly string[],
): Pick<CommonConfigFields, 'id2label' | 'label2id'> {
  const labels = names ?? Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
  return {
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
  };
}

// ------------------------------------------------------------------------------------------------ saving

export interface SaveModelOptions {
  /** Dtype of the written weights (default float32). */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** Shard above this many bytes (default 5 GB, Hugging Face's default). */
  maxShardBytes?: number;
  /** Copy tokenizer and processor files from this folder (e.g. the folder the model was loaded from). */
  filesFrom?: string | null;
  /** Class names for a classifier's id2label (default: the config's when the count matches, else LABEL_i). */
  labels?: readonly string[];
}

/** Files besides config and weights that make a folder usable: tokenizer, chat template, processor. */
export const AUXILIARY_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
];

/**
 * Writes a model folder. `weights` are keyed by the model's parameter names (as loadModelFolder returns them);
 * LoRA adapters must be merged first (nn/lora mergeLora). Files are written into a temporary folder and moved in,
 * config.json last, so an interrupted save never leaves a folder that looks complete.
 */
export function saveModelFolder(
  dir: string,
  model: LoadedModel & { config: HfConfig },
  weights: ReadonlyMap<string, HostTensor>,
  options: SaveModelOptions = {},
): string[] {
  const dtype = options.dtype ?? 'float32';
  const specs = parameterSpecs(model);
  const rules = nameRules(model.kind, model.config);
  const out = new Map<string, HostTensor>();
  for (const [name, spec] of specs) {
    const t = weights.get(name);
    if (!t) throw new TlabError(`saving ${dir}: weights lack parameter '${name}' (${shapeText(spec.shape)})`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i]))
      throw new TlabError(
        `saving ${dir}: parameter '${name}' has shape ${shapeText(t.shape)}, the model declares ${shapeText(spec.shape)}`,
      );
    out.set(fileKeyOf(rules, name), dtype === 'float32' ? toFloat32(t) : toHalf(t, dtype));
  }
  for (const name of weights.keys())
    if (!specs.has(name))
      throw new TlabError(
        `saving ${dir}: '${name}' is not a parameter of this ${model.config.model_type} ${model.kind}`,
        /lora_[AB]\./.test(name)
          ? 'merge LoRA adapters into the base weights first (mergeLora in src/nn/lora.ts)'
          : undefined,
      );

  mkdirSync(dirname(dir), { recursive: true });
  const temp = tempPathFor(dir);
  mkdirSync(temp, { recursive: true });
  try {
    const files = writeWeights(temp, out, options.maxShardBytes);
    const from = options.filesFrom;
    if (from)
      for (const f of AUXILIARY_FILES) {
        if (existsSync(join(from, f))) {
          copyFileSync(join(from, f), join(temp, f));
          files.push(f);
        }
      }
    writeJsonAtomic(join(temp, 'config.json'), savedConfig(model, dtype, options.labels));
    files.push('config.json');
    mkdirSync(dir, { recursive: true });
    for (const f of files.filter((f) => f !== 'config.json')) renameSync(join(temp, f), join(dir, f));
    removeStaleWeights(dir, files);
    renameSync(join(temp, 'config.json'), join(dir, 'config.json'));
    return files;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** config.json as transformers expects it for this model and kind. */
export function savedConfig(
  model: LoadedModel & { config: HfConfig },
  dtype: string,
  labels?: readonly string[],
): Record<string, unknown> {
  const { kind, config } = model;
  const type = config.model_type as ModelType;
  const arch = ARCHITECTURES[type][kind]!;
  const numLabels =
    kind === 'sequence-classifier' || kind === 'image-classifier' ? model.model.numLabels : null;
  const labelKeys =
    numLabels === null
      ? {}
      : labels
        ? labelFields(numLabels, labels)
        : config.id2label && Object.keys(config.id2label).length === numLabels
          ? { id2label: config.id2label, label2id: config.label2id ?? labelFields(numLabels).label2id }
          : labelFields(numLabels);
  if (labels && numLabels !== null && labels.length !== numLabels)
    throw new TlabError(`saving: ${labels.length} labels given for a ${numLabels}-label classifier`);
  const dtypeKeys = { torch_dtype: dtype, ...('dtype' in config ? { dtype } : {}) };
  const isClip = type === 'clip' || type === 'clip_vision_model';
  if (isClip) {
    const vision = {
      ...(type === 'clip' ? (config as { vision_config: object }).vision_config : config),
    } as Record<string, unknown>;
    for (const k of ['architectures', 'torch_dtype', 'dtype', 'id2label', 'label2id', 'num_labels'])
      delete vision[k];
    if (kind === 'vision-encoder')
      return { ...vision, model_type: 'clip_vision_model', architectures: [arch], ...dtypeKeys };
    const rest = type === 'clip' ? { ...config } : {};
    delete (rest as Record<string, unknown>).num_labels;
    return {
      ...rest,
      model_type: 'clip',
      architectures: [arch],
      vision_config: { ...vision, model_type: 'clip_vision_model' },
      ...labelKeys,
      ...dtypeKeys,
    };
  }
  const body: Record<string, unknown> = {
    ...config,
    model_type: type,
    architectures: [arch],
    ...labelKeys,
    ...dtypeKeys,
  };
  if (numLabels === null) {
    delete body.id2label;
    delete body.label2id;
  }
  delete body.num_labels;
  if (type === 'llava' && body.image_token_index === undefined && body.image_token_id !== undefined)
    body.image_token_index = body.image_token_id;
  return body;
}
