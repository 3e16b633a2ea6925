/**
 * model_type → what can be built from it: the kinds it supports, the Hugging Face architecture class of each
 * (what config.json's `architectures` says and what saving writes), and the builder.
 */
import { Graph } from '../../engine/ir/graph.ts';
import { ParamBuilder, type ParamSpec } from '../../nn/module.ts';
import { TlabError } from '../../util/errors.ts';
import { clipVisionModel } from '../clip-vision.ts';
import { gpt2Model } from '../gpt2.ts';
import { imageClassifier, sequenceClassifier } from '../heads.ts';
import { llamaModel } from '../llama.ts';
import { type Qwen2VlConfig, qwen2VlModel } from '../qwen2-vl.ts';
import type {
  DecoderLm,
  ImageClassifier,
  ModelKind,
  SequenceClassifier,
  VisionEncoder,
  Vlm,
} from '../types.ts';
import { vitModel } from '../vit.ts';
import { type LlavaConfig, llavaModel } from '../vlm.ts';
import { type HfConfig, MODEL_TYPES, type ModelType, numLabelsOf } from './configs.ts';

/** A built model, tagged with its kind. */
export type LoadedModel =
  | { kind: 'causal-lm'; model: DecoderLm }
  | { kind: 'sequence-classifier'; model: SequenceClassifier }
  | { kind: 'vision-encoder'; model: VisionEncoder }
  | { kind: 'image-classifier'; model: ImageClassifier }
  | { kind: 'vlm'; model: Vlm };

/** Architecture class per kind, for each model_type. */
export const ARCHITECTURES: Record<ModelType, Partial<Record<ModelKind, string>>> = {
  gpt2: { 'causal-lm': 'GPT2LMHeadModel', 'sequence-classifier': 'GPT2ForSequenceClassification' },
  llama: { 'causal-lm': 'LlamaForCausalLM', 'sequence-classifier': 'LlamaForSequenceClassification' },
  qwen2: { 'causal-lm': 'Qwen2ForCausalLM', 'sequence-classifier': 'Qwen2ForSequenceClassification' },
  vit: { 'vision-encoder': 'ViTModel', 'image-classifier': 'ViTForImageClassification' },
  clip_vision_model: {
    'vision-encoder': 'CLIPVisionModel',
    'image-classifier': 'CLIPForImageClassification',
  },
  clip: { 'vision-encoder': 'CLIPVisionModel', 'image-classifier': 'CLIPForImageClassification' },
  llava: { vlm: 'LlavaForConditionalGeneration' },
  qwen2_vl: { vlm: 'Qwen2VLForConditionalGeneration' },
};

export function kindsOf(type: ModelType): ModelKind[] {
  return Object.keys(ARCHITECTURES[type]) as ModelKind[];
}

/** The kind an `architectures` entry names, if this model_type supports it. */
export function kindFromArchitectures(config: HfConfig): ModelKind | null {
  const table = ARCHITECTURES[config.model_type as ModelType];
  for (const arch of config.architectures ?? []) {
    for (const [kind, name] of Object.entries(table)) if (name === arch) return kind as ModelKind;
    if (/(LMHeadModel|ForCausalLM)$/.test(arch) && table['causal-lm']) return 'causal-lm';
    if (/ForSequenceClassification$/.test(arch) && table['sequence-classifier']) return 'sequence-classifier';
    if (/ForImageClassification$/.test(arch) && table['image-classifier']) return 'image-classifier';
    if (/Model$/.test(arch) && table['vision-encoder']) return 'vision-encoder';
  }
  return null;
}

export function defaultKind(type: ModelType): ModelKind {
  return kindsOf(type)[0];
}

export interface BuildOptions {
  /** Classification heads: label count (default: the config's id2label / num_labels, else 2). */
  numLabels?: number;
}

function visionConfigOf(config: HfConfig) {
  if (config.model_type === 'clip') return config.vision_config;
  if (config.model_type === 'vit' || config.model_type === 'clip_vision_model') return config;
  return null;
}

/** Builds the model object (a graph builder; no weights) for a config and kind. */
export function buildModel(config: HfConfig, kind: ModelKind, options: BuildOptions = {}): LoadedModel {
  const type = config.model_type as ModelType;
  if (!(MODEL_TYPES as readonly string[]).includes(type))
    throw new TlabError(`unknown model_type '${type}'; valid: ${MODEL_TYPES.join(', ')}`);
  if (!ARCHITECTURES[type][kind])
    throw new TlabError(
      `model_type '${type}' cannot be built as a ${kind}; valid kinds: ${kindsOf(type).join(', ')}`,
    );
  const numLabels = options.numLabels ?? numLabelsOf(config);
  if (config.model_type === 'gpt2' || config.model_type === 'llama' || config.model_type === 'qwen2') {
    const decoder = config.model_type === 'gpt2' ? gpt2Model(config) : llamaModel(config);
    if (kind === 'causal-lm') return { kind, model: decoder };
    return {
      kind: 'sequence-classifier',
      model: sequenceClassifier(decoder, { numLabels, padTokenId: config.pad_token_id ?? null }),
    };
  }
  if (config.model_type === 'llava') return { kind: 'vlm', model: llavaModel(config as LlavaConfig) };
  if (config.model_type === 'qwen2_vl') return { kind: 'vlm', model: qwen2VlModel(config as Qwen2VlConfig) };
  const vision = visionConfigOf(config)!;
  const encoder = vision.model_type === 'vit' ? vitModel(vision) : clipVisionModel(vision);
  if (kind === 'vision-encoder') return { kind, model: encoder };
  return { kind: 'image-classifier', model: imageClassifier(encoder, { numLabels }) };
}

/** The parameters a model declares (names, shapes), collected by building its graph on placeholder inputs. */
export function parameterSpecs(loaded: LoadedModel): Map<string, ParamSpec> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const ids = () => graph.input('input_ids', 'int64', [1, 1]);
  const pixels = (e: VisionEncoder) =>
    graph.input('pixel_values', 'float32', [1, e.numChannels, e.imageSize, e.imageSize]);
  switch (loaded.kind) {
    case 'causal-lm':
      loaded.model.forward(pb, { ids: ids() });
      break;
    case 'sequence-classifier':
      loaded.model.forward(pb, { ids: ids() });
      break;
    case 'vision-encoder':
      loaded.model.forward(pb, pixels(loaded.model));
      break;
    case 'image-classifier':
      loaded.model.forward(pb, pixels(loaded.model.encoder));
      break;
    case 'vlm':
      loaded.model.forward(pb, { ids: ids(), pixelValues: pixels(loaded.model.encoder) });
      break;
  }
  return new Map(pb.specs);
}
