/**
 * The contracts every architecture implements, so training, generation, evaluation and feature extraction work
 * with any of them. Models are graph builders: they declare parameters through a ParamBuilder (Hugging Face
 * names) and return symbolic outputs; compilation and weights are the caller's business.
 */
import type { Graph, Value } from '../engine/ir/graph.ts';
import type { HostTensor } from '../engine/tensor.ts';
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
   * reads). With `imageGrids` (Qwen2-VL), instead the patches of every image of the batch, row by row in
   * placeholder order, as [total patches, C·T·P·P]. Omit for text-only steps.
   */
  pixelValues?: Value | null;
  /** Qwen2-VL: the (t, h, w) patch grid of each image in `pixelValues`, in the same order. */
  imageGrids?: readonly ImageGrid[] | null;
}

/** A Qwen2-VL image's patch grid: frames after temporal patching, patch rows, patch columns. */
export type ImageGrid = readonly [t: number, h: number, w: number];

/** A Qwen2-VL image after its processor: flattened patches [t·h·w, C·T·P·P] in the processor's order, and the grid. */
export interface PatchImage {
  readonly patches: Float32Array;
  readonly grid: ImageGrid;
}

/** One preprocessed image: pixels [C, H, W] at the tower's fixed size, or a Qwen2-VL image's patches. */
export type VlmImage = Float32Array | PatchImage;

/** Per batch row, its images in placeholder order. */
export type ImageRows = readonly (readonly VlmImage[])[];

/**
 * How a VLM takes images, so batching code (forward passes, generation, training) need not know the model: how
 * many placeholder tokens an image fills (LLaVA: a constant; Qwen2-VL: its merged patches, which depend on its
 * size), which graph inputs a batch's images need and how to feed them.
 */
export interface VlmImageInputs {
  /** Placeholder tokens one image fills; a TlabError starting with `where` for an image this model cannot take. */
  tokens(image: VlmImage, where: string): number;
  /** What of the batch's images shapes the graph (programs are compiled per signature); '' for no images. */
  signature(rows: ImageRows): string;
  /** Declares the image inputs for a batch like `rows` and returns the VlmInputs fields to pass to forward. */
  declare(graph: Graph, rows: ImageRows): Pick<VlmInputs, 'pixelValues' | 'imageGrids'>;
  /** Host tensors for the inputs `declare` made. */
  feeds(rows: ImageRows): Record<string, HostTensor>;
  /**
   * The rows with blank images added so the batch holds `perRow` images per row whatever the rows hold (a
   * training step's graph has one image input shape); no placeholder reads a blank image's features.
   */
  pad(rows: ImageRows, perRow: number): ImageRows;
  /**
   * How many positions fewer than tokens a row's images take (M-RoPE gives an image of t·h·w merged tokens only
   * max(t, h, w) positions; 0 for LLaVA): decoding after them continues at token index − this shift.
   */
  positionShift(images: readonly VlmImage[]): number;
}

export interface VlmOutputs extends DecoderOutputs {
  /** [B, k·imageTokens, D_text] projected image features (k images per row), or null without pixel values. */
  imageFeatures: Value | null;
}

/**
 * A vision-language model: vision encoder → projector → decoder, image features spliced into the token
 * embeddings at image placeholder tokens (LLaVA-style, and Qwen2-VL). It is a DecoderLm, so text generation drives
 * it the same way. `encoder`, `imageTokens` and `imageFeatures` describe the fixed-size path (pixels [C, H, W] at
 * `encoder.imageSize`); `imageInputs` covers every path, including Qwen2-VL's images of any size.
 */
export interface Vlm extends DecoderLm {
  readonly encoder: VisionEncoder;
  readonly decoder: DecoderLm;
  readonly imageTokenId: number;
  /** Placeholder tokens per fixed-size image (= patch features after the select strategy, or merged patches). */
  readonly imageTokens: number;
  /** How batches of images reach the model (the fixed-size path, or Qwen2-VL's native resolution). */
  readonly imageInputs: VlmImageInputs;
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
