/**
 * The contracts every architecture implements, so training, generation, evaluation and feature extraction work
 * with any of them. Models are graph builders: they declare parameters through a ParamBuilder (Hugging Face
 * names) and return symbolic outputs; compilation and weights are the caller's business.
 */
import type { Value } from '../engine/ir/graph.ts';
import type { KvCache } from '../nn/kv-cache.ts';
import type { ParamBuilder } from '../nn/module.ts';

export interface DecoderInputs {
  /** Token ids [B, T], int64. */
  ids: Value;
  /** [B, T] int64, 1 = token, 0 = padding; ignored when `cache` is given (the cache carries its own mask). */
  attentionMask?: Value | null;
  /** Incremental decoding state; positions then come from the cache. */
  cache?: KvCache | null;
  /** Edits the token embeddings [B, T, D] before the first block (a VLM splices image features here). */
  editEmbeds?: ((embeds: Value) => Value) | null;
}

export interface DecoderBackboneOutputs {
  /** As Hugging Face's output_hidden_states: the embeddings, then each block's output (the last after the final norm). */
  hiddenStates: Value[];
  /** [B, T, D] final hidden state (after the final norm). */
  lastHidden: Value;
}

export interface DecoderOutputs extends DecoderBackboneOutputs {
  /** [B, T, V] */
  logits: Value;
}

/** A decoder-only language model (GPT-2, Llama, Qwen2). */
export interface DecoderLm {
  readonly modelType: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxPositions: number;
  /** The LM head reuses the token embedding table (no `lm_head.weight` parameter). */
  readonly tiedEmbeddings: boolean;
  forward(pb: ParamBuilder, inputs: DecoderInputs): DecoderOutputs;
  /** The transformer without the LM head (classification, features): declares no LM head parameter. */
  backbone(pb: ParamBuilder, inputs: DecoderInputs): DecoderBackboneOutputs;
}

export interface VisionOutputs {
  /**
   * As Hugging Face's output_hidden_states: the embeddings (after CLIP's pre_layrnorm), then each layer's output;
   * none of them after the final norm.
   */
  hiddenStates: Value[];
  /** [B, 1 + N, D] as Hugging Face's last_hidden_state: ViT after its final layernorm, CLIP without a norm. */
  lastHidden: Value;
  /** [B, D] the CLS token: ViT's layernormed CLS (what ViTForImageClassification reads), CLIP's post_layernorm(CLS). */
  pooled: Value;
}

/** A ViT-style image encoder over pixel values [B, C, H, W] (float, already resized and normalized). */
export interface VisionEncoder {
  readonly modelType: string;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly numChannels: number;
  /** (imageSize / patchSize)²; the sequence is the CLS token followed by these patches. */
  readonly numPatches: number;
  forward(pb: ParamBuilder, pixelValues: Value): VisionOutputs;
}

export interface VlmInputs extends DecoderInputs {
  /**
   * [B·k, C, H, W]: k images per row (row r's are r·k .. r·k+k−1, in placeholder order); their features replace the
   * row's image placeholder tokens in order (rows with fewer images get blank ones, whose features no placeholder
   * reads). Omit for text-only steps.
   */
  pixelValues?: Value | null;
}

export interface VlmOutputs extends DecoderOutputs {
  /** [B, k·imageTokens, D_text] projected image features (k images per row), or null without pixel values. */
  imageFeatures: Value | null;
}

/**
 * A LLaVA-style vision-language model: vision encoder → projector → decoder, image features spliced into the
 * token embeddings at image placeholder tokens. It is a DecoderLm, so text generation drives it the same way.
 */
export interface Vlm extends DecoderLm {
  readonly encoder: VisionEncoder;
  readonly decoder: DecoderLm;
  readonly imageTokenId: number;
  /** Placeholder tokens per image (= patch features after the select strategy). */
  readonly imageTokens: number;
  forward(pb: ParamBuilder, inputs: VlmInputs): VlmOutputs;
  backbone(pb: ParamBuilder, inputs: VlmInputs): DecoderBackboneOutputs;
  /** Projected image features [B, imageTokens, D_text]. */
  imageFeatures(pb: ParamBuilder, pixelValues: Value): Value;
}

export interface ClassifierOutputs {
  /** [B, numLabels] */
  logits: Value;
  /** [B, D] the features the classification head reads. */
  pooled: Value;
  hiddenStates: Value[];
}

/** Hugging Face *ForSequenceClassification: a `score` projection (no bias) of the last non-padding token. */
export interface SequenceClassifier {
  readonly modelType: string;
  readonly numLabels: number;
  readonly padTokenId: number | null;
  readonly decoder: DecoderLm;
  forward(pb: ParamBuilder, inputs: { ids: Value; attentionMask?: Value | null }): ClassifierOutputs;
}

/** Hugging Face *ForImageClassification: a `classifier` projection of the pooled image features. */
export interface ImageClassifier {
  readonly modelType: string;
  readonly numLabels: number;
  readonly encoder: VisionEncoder;
  forward(pb: ParamBuilder, pixelValues: Value): ClassifierOutputs;
}

/** What a model folder holds, as Hugging Face's architectures name it. */
export type ModelKind = 'causal-lm' | 'sequence-classifier' | 'vision-encoder' | 'image-classifier' | 'vlm';

export type AnyModel = DecoderLm | SequenceClassifier | VisionEncoder | ImageClassifier | Vlm;

/** Parts of a model that training strategies freeze or train separately. */
export type ModelComponent = 'encoder' | 'projector' | 'decoder' | 'head';
