/**
 * Qwen2-VL (Hugging Face Qwen2VLForConditionalGeneration): the vision tower of qwen2-vl-vision.ts, its merged
 * features spliced at `<|image_pad|>` placeholders (the k-th placeholder of the batch takes the k-th feature, as
 * HF's masked_scatter), and a Qwen2 text model whose rotary positions are M-RoPE (qwen2-vl-rope.ts). Without
 * images the three M-RoPE axes are equal and the text model is exactly Qwen2 (`decoder`, the text-only fall-back).
 *
 * Images of any size: a Qwen2-VL processor turns an image into patches and a grid (t, h, w); the image fills
 * t·h·w / merge² placeholders, so prompts are expanded per image (VlmImageInputs.tokens), as HF's processor
 * repeats `<|image_pad|>`. Square pixels [C, S, S] at vision_config.image_size (default 448) also work (the
 * fixed-size path that LLaVA-style callers use): they are patchified in the graph and give the same features as
 * the processor's patches of that image.
 *
 * Parameter names are those of the hub's checkpoints: `visual.*`, `model.embed_tokens`, `model.layers.{i}...`,
 * `model.norm`, `lm_head` (absent when tied); transformers ≥ 4.52's `model.visual.*` / `model.language_model.*`
 * are read too (hf/names.ts).
 */
import type { Graph, Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { embedding, linear, rmsNorm } from '../nn/layers.ts';
import type { ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { decoderMask } from './decoder-mask.ts';
import { type LlamaConfig, type LlamaDims, llamaBlock, llamaDims, llamaModel } from './llama.ts';
import {
  type ImageTokenIndex,
  imageTokenIndex,
  mropeCosSin,
  mropeSection,
  mropeShift,
} from './qwen2-vl-rope.ts';
import {
  gridSizes,
  patchifyPixels,
  type Qwen2VisionDims,
  type Qwen2VlVisionConfig,
  qwen2VisionDims,
  qwen2VisionTower,
} from './qwen2-vl-vision.ts';
import { ropeInverseFrequencies } from './rope.ts';
import type {
  DecoderBackboneOutputs,
  ImageGrid,
  ImageRows,
  PatchImage,
  VisionEncoder,
  Vlm,
  VlmImage,
  VlmImageInputs,
  VlmInputs,
} from './types.ts';
import { fixedSizeImageInputs } from './vlm.ts';

export type { Qwen2VlVisionConfig } from './qwen2-vl-vision.ts';

/** The text half (Qwen2VLTextConfig): Qwen2's fields, rope_scaling {type: mrope, mrope_section}. */
export type Qwen2VlTextConfig = Omit<LlamaConfig, 'model_type'> & { model_type: 'qwen2_vl_text' };

export interface Qwen2VlConfig {
  model_type: 'qwen2_vl';
  /** Normalised on parsing: older files keep these fields at the top level (hf/configs.ts). */
  text_config: Qwen2VlTextConfig;
  vision_config: Qwen2VlVisionConfig;
  image_token_id?: number;
  video_token_id?: number;
  vision_start_token_id?: number;
  vision_end_token_id?: number;
  tie_word_embeddings?: boolean;
}

/** Qwen2-VL's special token ids (config.json; the defaults are the released models'). */
export function qwen2VlTokenIds(config: Qwen2VlConfig): {
  image: number;
  video: number;
  visionStart: number;
  visionEnd: number;
} {
  return {
    image: config.image_token_id ?? 151655,
    video: config.video_token_id ?? 151656,
    visionStart: config.vision_start_token_id ?? 151652,
    visionEnd: config.vision_end_token_id ?? 151653,
  };
}

/** The text config as a plain Qwen2 config (rope_scaling dropped: M-RoPE is handled here) and the rope settings. */
function textView(
  config: Qwen2VlConfig,
  where: string,
): { qwen2: LlamaConfig; theta: number; section: [number, number, number] } {
  const text = config.text_config;
  const params = (text.rope_parameters ?? text.rope_scaling ?? {}) as Record<string, unknown>;
  const type = params.rope_type ?? params.type ?? 'default';
  if (type !== 'mrope' && type !== 'default')
    throw new TlabError(
      `${where}: text_config.rope_scaling: rope type '${String(type)}' is not supported for qwen2_vl; valid: mrope`,
    );
  const theta = typeof params.rope_theta === 'number' ? params.rope_theta : (text.rope_theta ?? 1e6);
  const qwen2: LlamaConfig = {
    ...text,
    model_type: 'qwen2',
    rope_theta: theta,
    rope_scaling: null,
    rope_parameters: null,
    tie_word_embeddings: text.tie_word_embeddings ?? config.tie_word_embeddings ?? false,
  };
  const headDim = qwen2.head_dim ?? qwen2.hidden_size / qwen2.num_attention_heads;
  return {
    qwen2,
    theta,
    section: mropeSection(params.mrope_section, headDim, `${where}: text_config.rope_scaling`),
  };
}

/** A TlabError unless `image` is a Qwen2-VL processor's patches whose grid this tower can take. */
function patchImageTokens(image: PatchImage, dims: Qwen2VisionDims, where: string): number {
  const { patches, tokens } = gridSizes(image.grid, dims.merge, where);
  if (image.patches.length !== patches * dims.patchDim)
    throw new TlabError(
      `${where}: ${image.patches.length} patch values for grid (${image.grid.join(', ')}); the tower takes ${patches} x ${dims.patchDim}`,
    );
  return tokens;
}

export function qwen2VlModel(config: Qwen2VlConfig): Vlm {
  const where = 'qwen2_vl config';
  const view = textView(config, where);
  const decoder = llamaModel(view.qwen2);
  const dims = llamaDims(view.qwen2, where);
  const vision = qwen2VisionDims(config.vision_config, `${where}: vision_config`);
  if (vision.out !== dims.hidden)
    throw new TlabError(
      `${where}: vision_config.hidden_size ${vision.out} (the merger's output) must equal the text hidden_size ${dims.hidden}`,
    );
  const imageTokenId = qwen2VlTokenIds(config).image;
  if (imageTokenId < 0 || imageTokenId >= dims.vocab)
    throw new TlabError(
      `${where}: image_token_id ${imageTokenId} is outside the text vocabulary (vocab_size ${dims.vocab})`,
    );
  const side = vision.imageSize / vision.patch; // patches per side on the fixed-size path
  const fixedGrid: ImageGrid = [1, side, side];
  const fixedTokens = gridSizes(fixedGrid, vision.merge, where).tokens;
  const rope = { theta: view.theta, section: view.section };

  const encoder: VisionEncoder = {
    modelType: 'qwen2_vl_vision',
    hiddenSize: vision.embed,
    numLayers: vision.depth,
    numHeads: vision.heads,
    imageSize: vision.imageSize,
    patchSize: vision.patch,
    numChannels: vision.channels,
    numPatches: side * side,
    forward(pb, pixels) {
      const b = pixels.shape[0];
      const grids = Array.from({ length: b }, () => fixedGrid);
      const out = pb.scope('visual', () =>
        qwen2VisionTower(pb, vision, patchifyPixels(pixels, vision), grids),
      );
      const hiddenStates = out.hiddenStates.map((h) => T.reshape(h, [b, side * side, vision.embed]));
      const lastHidden = hiddenStates[hiddenStates.length - 1];
      // No CLS token: the pooled feature is the mean over the image's patches.
      return { hiddenStates, lastHidden, pooled: T.reduceMean(lastHidden, 1) };
    },
  };

  /** Image features and where each placeholder takes them from, for native grids or fixed-size pixels. */
  const imageParts = (
    pb: ParamBuilder,
    inputs: VlmInputs,
  ): { features: Value; index: ImageTokenIndex; grids: readonly ImageGrid[] } | null => {
    const pixels = inputs.pixelValues;
    if (!pixels) return null;
    const b = inputs.ids.shape[0];
    let patches = pixels;
    let grids = inputs.imageGrids ?? null;
    let stride: number | null = null;
    if (!grids) {
      if (pixels.shape[0] % b !== 0)
        throw new TlabError(
          `pixel values ${pixels} do not hold the same number of images for each of the ${b} rows of ${inputs.ids}`,
        );
      const k = pixels.shape[0] / b;
      patches = patchifyPixels(pixels, vision);
      grids = Array.from({ length: b * k }, () => fixedGrid);
      stride = k * fixedTokens;
    }
    const features = pb.scope('visual', () => qwen2VisionTower(pb, vision, patches, grids!).features);
    const index = imageTokenIndex(inputs.ids, imageTokenId, features.shape[0], stride);
    return { features, index, grids };
  };

  const run = (pb: ParamBuilder, inputs: VlmInputs, head: boolean) => {
    const parts = imageParts(pb, inputs);
    if (!parts) {
      const out = head ? decoder.forward(pb, inputs) : decoder.backbone(pb, inputs);
      return { out, features: null };
    }
    const out = textWithImages(pb, view.qwen2, dims, rope, inputs, parts, vision.merge, head);
    return { out, features: parts.features };
  };

  return {
    modelType: 'qwen2_vl',
    vocabSize: dims.vocab,
    hiddenSize: dims.hidden,
    numLayers: dims.layers,
    numHeads: dims.heads,
    numKvHeads: dims.kvHeads,
    headDim: dims.headDim,
    maxPositions: view.qwen2.max_position_embeddings,
    tiedEmbeddings: dims.tied,
    encoder,
    decoder,
    imageTokenId,
    imageTokens: fixedTokens,
    imageInputs: qwen2VlImageInputs(encoder, vision, fixedTokens, mropeShift(fixedGrid, vision.merge)),
    imageFeatures(pb, pixels) {
      const b = pixels.shape[0];
      const grids = Array.from({ length: b }, () => fixedGrid);
      const f = pb.scope('visual', () => qwen2VisionTower(pb, vision, patchifyPixels(pixels, vision), grids));
      return T.reshape(f.features, [b, fixedTokens, dims.hidden]);
    },
    forward(pb, inputs) {
      const { out, features } = run(pb, inputs, true);
      return { ...(out as ReturnType<typeof decoder.forward>), imageFeatures: features };
    },
    backbone(pb, inputs) {
      const { out } = run(pb, inputs, false);
      return { hiddenStates: out.hiddenStates, lastHidden: out.lastHidden };
    },
  };
}

/**
 * The text model over embeddings with image features spliced in and M-RoPE positions: Qwen2's blocks
 * (llama.ts llamaBlock), parameters under `model.` and `lm_head`.
 */
function textWithImages(
  pb: ParamBuilder,
  config: LlamaConfig,
  dims: LlamaDims,
  rope: { theta: number; section: [number, number, number] },
  inputs: VlmInputs,
  images: { features: Value; index: ImageTokenIndex; grids: readonly ImageGrid[] },
  merge: number,
  head: boolean,
): DecoderBackboneOutputs & { logits?: Value } {
  const { ids } = inputs;
  const [b, t] = ids.shape;
  const cache = inputs.cache ?? null;
  const longest = cache ? cache.shape.maxLength : t;
  if (longest > config.max_position_embeddings)
    throw new TlabError(
      `qwen2_vl: sequence length ${longest} exceeds max_position_embeddings ${config.max_position_embeddings}`,
    );
  const out = pb.scope('model', () => {
    const embed = embedding(pb, 'embed_tokens', ids, dims.vocab, dims.hidden, dims.std);
    const d = dims.hidden;
    const gathered = T.gather(images.features, images.index.index, 0); // (B, T, D)
    const where3 = T.expand(T.reshape(images.index.isImage, [b, t, 1]), [b, t, d]);
    const spliced = T.where(where3, gathered, embed.out);
    let h = inputs.editEmbeds ? inputs.editEmbeds(spliced) : spliced;
    const invFreq = ropeInverseFrequencies(
      { type: 'default', theta: rope.theta, factor: 1 },
      dims.headDim,
      config.max_position_embeddings,
      longest,
    );
    const positions = cache ? cache.positions : T.arange(ids.graph, t, 'int64');
    const { cos, sin } = mropeCosSin(invFreq, rope.section, positions, longest, h.dtype, {
      index: images.index,
      grids: images.grids,
      merge,
    });
    const mask = decoderMask(ids, inputs.attentionMask, cache);
    const hidden: Value[] = [h];
    for (let i = 0; i < dims.layers; i++) {
      h = pb.scope(`layers.${i}`, () =>
        llamaBlock(pb, dims, config.attention_dropout ?? 0, h, mask, cos, sin, i, cache),
      );
      hidden.push(h);
    }
    const last = rmsNorm(pb, 'norm', h, dims.hidden, dims.eps);
    hidden[hidden.length - 1] = last;
    return { hiddenStates: hidden, lastHidden: last, embedTable: embed.table };
  });
  if (!head) return { hiddenStates: out.hiddenStates, lastHidden: out.lastHidden };
  const logits = dims.tied
    ? T.matmul(out.lastHidden, T.transpose(out.embedTable, [1, 0]))
    : linear(pb, 'lm_head', out.lastHidden, dims.hidden, dims.vocab, { bias: false, std: dims.std });
  return { hiddenStates: out.hiddenStates, lastHidden: out.lastHidden, logits };
}

/**
 * Qwen2-VL's image inputs: processor patches with their grids (any size; the batch's patches concatenated in row
 * order, as HF's collator must), or square pixels [C, S, S] on the fixed-size path. A batch takes one kind.
 */
function qwen2VlImageInputs(
  encoder: VisionEncoder,
  vision: Qwen2VisionDims,
  fixedTokens: number,
  fixedShift: number,
): VlmImageInputs {
  const fixed = fixedSizeImageInputs(encoder, fixedTokens, fixedShift);
  const kindOf = (rows: ImageRows): 'none' | 'fixed' | 'patches' => {
    const all = rows.flat();
    if (all.length === 0) return 'none';
    const patches = all.filter((i) => !(i instanceof Float32Array)).length;
    if (patches === 0) return 'fixed';
    if (patches === all.length) return 'patches';
    throw new TlabError(
      'qwen2_vl: a batch mixes processor patches and fixed-size pixels; preprocess all images the same way',
    );
  };
  const flat = (rows: ImageRows) => rows.flat() as PatchImage[];
  return {
    tokens(image: VlmImage, where: string): number {
      return image instanceof Float32Array
        ? fixed.tokens(image, where)
        : patchImageTokens(image, vision, where);
    },
    signature(rows) {
      const kind = kindOf(rows);
      if (kind !== 'patches') return kind === 'none' ? '' : fixed.signature(rows);
      return `g${flat(rows)
        .map((i) => i.grid.join('x'))
        .join(',')}`;
    },
    declare(graph: Graph, rows) {
      if (kindOf(rows) !== 'patches') return fixed.declare(graph, rows);
      const images = flat(rows);
      const n = images.reduce((s, i) => s + i.patches.length / vision.patchDim, 0);
      return {
        pixelValues: graph.input('pixel_values', 'float32', [n, vision.patchDim]),
        imageGrids: images.map((i) => i.grid),
      };
    },
    feeds(rows): Record<string, HostTensor> {
      if (kindOf(rows) !== 'patches') return fixed.feeds(rows);
      const images = flat(rows);
      const data = new Float32Array(images.reduce((s, i) => s + i.patches.length, 0));
      let at = 0;
      images.forEach((image, i) => {
        patchImageTokens(image, vision, `image ${i}`);
        data.set(image.patches, at);
        at += image.patches.length;
      });
      return {
        pixel_values: { dtype: 'float32', shape: [at / vision.patchDim, vision.patchDim], data },
      };
    },
    pad(rows, perRow) {
      if (kindOf(rows) !== 'patches') return fixed.pad(rows, perRow);
      // Placeholders take features in batch order, so blank images go after every real one (in the last row).
      const missing = rows.length * perRow - rows.flat().length;
      if (missing <= 0) return rows;
      const like = flat(rows)[0];
      const blank: PatchImage = { patches: new Float32Array(like.patches.length), grid: like.grid };
      return rows.map((row, r) =>
        r === rows.length - 1 ? [...row, ...Array.from({ length: missing }, () => blank)] : row,
      );
    },
    positionShift(images) {
      return images.reduce(
        (s, i) => s + (i instanceof Float32Array ? fixedShift : mropeShift(i.grid, vision.merge)),
        0,
      );
    },
  };
}
