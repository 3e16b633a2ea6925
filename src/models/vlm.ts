/**
 * LLaVA-style vision-language model (Hugging Face LlavaForConditionalGeneration): a vision encoder's hidden state
 * at `vision_feature_layer` (CLS dropped with the "default" select strategy) → multi-modal projector (`linear`, or
 * HF's `mlp2x_gelu` Linear → act → Linear) → features replace the embeddings of image placeholder tokens, one
 * token per feature, as LLaVA's processor expands `<image>` into image_seq_length tokens → decoder (GPT-2 or
 * Llama/Qwen2). Parameters: `vision_tower.*`, `multi_modal_projector.linear_{1,2}.*`, `language_model.*`.
 */
import type { Graph, Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { linear } from '../nn/layers.ts';
import type { ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { type ClipVisionConfig, clipVisionModel } from './clip-vision.ts';
import { activation, type Gpt2Config, gpt2Model } from './gpt2.ts';
import { type LlamaConfig, llamaModel } from './llama.ts';
import type {
  DecoderLm,
  ImageRows,
  VisionEncoder,
  Vlm,
  VlmImage,
  VlmImageInputs,
  VlmInputs,
} from './types.ts';
import { type VitConfig, vitModel } from './vit.ts';

export const PROJECTOR_TYPES = ['linear', 'mlp2x_gelu'] as const;
export type ProjectorType = (typeof PROJECTOR_TYPES)[number];

export type TextConfig = Gpt2Config | LlamaConfig;
export type VisionConfig = VitConfig | ClipVisionConfig;

export interface LlavaConfig {
  model_type: 'llava';
  text_config: TextConfig;
  vision_config: VisionConfig;
  /** HF's attribute; older files call it image_token_index. */
  image_token_id?: number;
  image_token_index?: number;
  projector_hidden_act?: string;
  vision_feature_select_strategy?: 'default' | 'full';
  vision_feature_layer?: number | number[];
  image_seq_length?: number;
  multimodal_projector_bias?: boolean;
  tie_word_embeddings?: boolean;
  /**
   * LLaVA's projector type (not an HF field: HF always builds mlp2x_gelu). `linear` keeps only linear_1, which
   * transformers cannot load into LlavaForConditionalGeneration (it would initialise linear_2 randomly).
   */
  mm_projector_type?: ProjectorType;
}

export function decoderFor(text: TextConfig): DecoderLm {
  return text.model_type === 'gpt2' ? gpt2Model(text) : llamaModel(text);
}

export function visionEncoderFor(vision: VisionConfig): VisionEncoder {
  return vision.model_type === 'vit' ? vitModel(vision) : clipVisionModel(vision);
}

/** The text config with the top-level tie flag applied (LlavaConfig forwards a true text-config flag). */
function textWithTie(config: LlavaConfig): TextConfig {
  if (!config.tie_word_embeddings) return config.text_config;
  return { ...config.text_config, tie_word_embeddings: true };
}

export function imageTokenIdOf(config: LlavaConfig): number {
  return config.image_token_id ?? config.image_token_index ?? 32000;
}

export function llavaModel(config: LlavaConfig): Vlm {
  const where = 'llava config';
  const decoder = decoderFor(textWithTie(config));
  const encoder = visionEncoderFor(config.vision_config);
  const strategy = config.vision_feature_select_strategy ?? 'default';
  const layers = config.vision_feature_layer ?? -2;
  const layerList = typeof layers === 'number' ? [layers] : layers;
  for (const l of layerList)
    if (!Number.isInteger(l) || l < -(encoder.numLayers + 1) || l > encoder.numLayers)
      throw new TlabError(
        `${where}: vision_feature_layer ${l} is outside the vision tower's ${encoder.numLayers + 1} hidden states`,
      );
  const projector = config.mm_projector_type ?? 'mlp2x_gelu';
  if (!PROJECTOR_TYPES.includes(projector))
    throw new TlabError(
      `${where}: mm_projector_type '${projector}' is not supported; valid: ${PROJECTOR_TYPES.join(', ')}`,
    );
  const act = activation(config.projector_hidden_act ?? 'gelu', `${where} projector_hidden_act`);
  const bias = config.multimodal_projector_bias ?? true;
  const imageTokens = encoder.numPatches + (strategy === 'full' ? 1 : 0);
  if (config.image_seq_length !== undefined && config.image_seq_length !== imageTokens)
    throw new TlabError(
      `${where}: image_seq_length ${config.image_seq_length} does not match the ${imageTokens} image features the vision tower gives (vision_feature_select_strategy '${strategy}')`,
    );
  const imageTokenId = imageTokenIdOf(config);
  if (imageTokenId < 0 || imageTokenId >= decoder.vocabSize)
    throw new TlabError(
      `${where}: image_token_id ${imageTokenId} is outside the text vocabulary (vocab_size ${decoder.vocabSize})`,
    );

  const imageFeatures = (pb: ParamBuilder, pixels: Value): Value => {
    const vision = pb.scope('vision_tower', () => encoder.forward(pb, pixels));
    const states = vision.hiddenStates;
    const picked = layerList.map((l) => {
      const h = states[l < 0 ? states.length + l : l];
      return strategy === 'default' ? T.slice(h, [1], [1], [h.shape[1]]) : h;
    });
    const x = T.concat(picked, -1);
    const inDim = encoder.hiddenSize * layerList.length;
    const d = decoder.hiddenSize;
    return pb.scope('multi_modal_projector', () => {
      const y = linear(pb, 'linear_1', x, inDim, d, { bias });
      return projector === 'linear' ? y : linear(pb, 'linear_2', act(y), d, d, { bias });
    });
  };

  // pixel values [B·k, C, H, W] hold k images per row (in placeholder order): their features, concatenated per row
  // to [B, k·N, D], fill the row's k·N placeholders in order.
  const rowFeatures = (pb: ParamBuilder, pixels: Value, ids: Value): Value => {
    const b = ids.shape[0];
    const images = pixels.shape[0];
    if (images % b !== 0)
      throw new TlabError(
        `pixel values ${pixels} do not hold the same number of images for each of the ${b} rows of ${ids}`,
      );
    const f = imageFeatures(pb, pixels);
    const k = images / b;
    return k === 1 ? f : T.reshape(f, [b, k * f.shape[1], f.shape[2]]);
  };

  const decoderInputs = (pb: ParamBuilder, inputs: VlmInputs) => {
    const features = inputs.pixelValues ? rowFeatures(pb, inputs.pixelValues, inputs.ids) : null;
    const outer = inputs.editEmbeds ?? null;
    const editEmbeds = features
      ? (embeds: Value) => {
          const spliced = spliceImageFeatures(embeds, inputs.ids, features, imageTokenId);
          return outer ? outer(spliced) : spliced;
        }
      : outer;
    return {
      features,
      inputs: { ids: inputs.ids, attentionMask: inputs.attentionMask, cache: inputs.cache, editEmbeds },
    };
  };

  return {
    modelType: 'llava',
    vocabSize: decoder.vocabSize,
    hiddenSize: decoder.hiddenSize,
    numLayers: decoder.numLayers,
    numHeads: decoder.numHeads,
    numKvHeads: decoder.numKvHeads,
    headDim: decoder.headDim,
    maxPositions: decoder.maxPositions,
    tiedEmbeddings: decoder.tiedEmbeddings,
    encoder,
    decoder,
    imageTokenId,
    imageTokens,
    imageInputs: fixedSizeImageInputs(encoder, imageTokens),
    imageFeatures,
    forward(pb, inputs) {
      const { features, inputs: di } = decoderInputs(pb, inputs);
      const out = pb.scope('language_model', () => decoder.forward(pb, di));
      return { ...out, imageFeatures: features };
    },
    backbone(pb, inputs) {
      const { inputs: di } = decoderInputs(pb, inputs);
      return pb.scope('language_model', () => decoder.backbone(pb, di));
    },
  };
}

/**
 * Replaces the embeddings [B, T, D] at positions where `ids` equals `imageTokenId` with the row's image features
 * [B, N, D], in order: the k-th placeholder of row b receives features[b, k]. The index is a running count of
 * placeholders (a matmul with an upper-triangular ones matrix), so the splice is static-shape and differentiable
 * with respect to both embeddings and features. Counts other than 0 or N are caught on the host by
 * checkImagePlaceholders.
 */
export function spliceImageFeatures(embeds: Value, ids: Value, features: Value, imageTokenId: number): Value {
  const [b, t, d] = embeds.shape;
  const n = features.shape[1];
  if (features.shape[0] !== b || features.shape[2] !== d)
    throw new TlabError(`image features ${features} do not match token embeddings ${embeds}`);
  const isImage = T.equal(ids, T.scalar(ids, imageTokenId));
  const upper = new Array<number>(t * t).fill(0);
  for (let i = 0; i < t; i++) for (let j = i; j < t; j++) upper[i * t + j] = 1;
  const running = T.matmul(T.cast(isImage, 'float32'), T.constant(ids.graph, 'float32', [t, t], upper));
  const index = T.cast(T.minimum(T.maximum(T.sub(running, 1), 0), n - 1), 'int64');
  const gathered = T.gatherElements(features, T.expand(T.reshape(index, [b, t, 1]), [b, t, d]), 1);
  return T.where(T.expand(T.reshape(isImage, [b, t, 1]), [b, t, d]), gathered, embeds);
}

/** A decoder LM that takes images (a LLaVA-style VLM). */
export function isVlm(model: DecoderLm): model is Vlm {
  return 'imageTokenId' in model && 'imageFeatures' in model;
}

/** Image placeholder tokens in `ids`. */
export function countImagePlaceholders(ids: readonly number[], imageTokenId: number): number {
  let n = 0;
  for (const id of ids) if (id === imageTokenId) n++;
  return n;
}

/** Host-side check that each row holds 0 or exactly `imageTokens` placeholders (one per image feature). */
export function checkImagePlaceholders(
  ids: HostTensor,
  imageTokenId: number,
  imageTokens: number,
  where = 'input ids',
): void {
  const [b, t] = ids.shape;
  for (let r = 0; r < b; r++) {
    let count = 0;
    for (let i = 0; i < t; i++) if (Number(ids.data[r * t + i]) === imageTokenId) count++;
    if (count !== 0 && count !== imageTokens)
      throw new TlabError(
        `${where}: row ${r} holds ${count} image placeholder tokens (id ${imageTokenId}); the image gives ${imageTokens} features, so a row needs exactly ${imageTokens} (or none)`,
        'expand each <image> token with expandImagePlaceholders() before batching',
      );
  }
}

/**
 * Expands every placeholder token into copies, one per image feature, as LLaVA's processor does with `<image>`
 * and Qwen2-VL's with `<|image_pad|>`: `imageTokens` copies each, or the k-th placeholder into `imageTokens[k]`
 * (images whose token counts differ, e.g. from VlmImageInputs.tokens).
 */
export function expandImagePlaceholders(
  ids: readonly number[],
  imageTokenId: number,
  imageTokens: number | readonly number[],
): number[] {
  const out: number[] = [];
  let k = 0;
  for (const id of ids) {
    if (id !== imageTokenId) {
      out.push(id);
      continue;
    }
    const n = typeof imageTokens === 'number' ? imageTokens : imageTokens[k];
    if (n === undefined)
      throw new TlabError(
        `image placeholder ${k + 1} (id ${imageTokenId}) has no image: ${(imageTokens as readonly number[]).length} token count(s) given`,
      );
    for (let i = 0; i < n; i++) out.push(id);
    k++;
  }
  if (typeof imageTokens !== 'number' && k !== imageTokens.length)
    throw new TlabError(
      `${imageTokens.length} images for ${k} image placeholder token(s) (id ${imageTokenId}); give one image per placeholder`,
    );
  return out;
}

/**
 * The fixed-size image path: an image is pixels [C, S, S] (S = the encoder's image size) filling `imageTokens`
 * placeholders; a batch is pixel_values [B·k, C, S, S] with k the most images any row has (blank images where a
 * row has fewer; no placeholder reads their features). `shift` is the position shift per image (0 for LLaVA).
 */
export function fixedSizeImageInputs(encoder: VisionEncoder, imageTokens: number, shift = 0): VlmImageInputs {
  const { numChannels: c, imageSize: s } = encoder;
  const perRow = (rows: ImageRows) => Math.max(0, ...rows.map((r) => r.length));
  return {
    tokens(image: VlmImage, where: string): number {
      if (!(image instanceof Float32Array))
        throw new TlabError(
          `${where}: image patches with a grid (a Qwen2-VL processor's output) given; this model takes pixels ${c}x${s}x${s}`,
        );
      if (image.length !== c * s * s)
        throw new TlabError(`${where} has ${image.length} values; the vision tower takes ${c}x${s}x${s}`);
      return imageTokens;
    },
    signature: (rows) => (perRow(rows) ? `i${perRow(rows)}` : ''),
    declare: (graph: Graph, rows) => ({
      pixelValues: graph.input('pixel_values', 'float32', [rows.length * perRow(rows), c, s, s]),
    }),
    feeds(rows) {
      const k = perRow(rows);
      const n = c * s * s;
      const data = new Float32Array(rows.length * k * n);
      rows.forEach((row, r) => {
        row.forEach((image, i) => {
          if (!(image instanceof Float32Array) || image.length !== n)
            throw new TlabError(`row ${r} image ${i}: expected pixels ${c}x${s}x${s}`);
          data.set(image, (r * k + i) * n);
        });
      });
      return { pixel_values: { dtype: 'float32', shape: [rows.length * k, c, s, s], data } };
    },
    positionShift: (images) => images.length * shift,
    pad(rows, perRow) {
      const blank = new Float32Array(c * s * s);
      return rows.map((row) => [
        ...row,
        ...Array.from({ length: Math.max(0, perRow - row.length) }, () => blank),
      ]);
    },
  };
}
