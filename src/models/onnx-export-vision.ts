/**
 * Vision encoders (ViT, CLIP's vision tower), image classifiers and a LLaVA model's vision part as ONNX graphs
 * with a dynamic batch axis, in the layout optimum exports them (optimum-onnx 1939f27a, model_configs.py
 * ViTOnnxConfig / CLIPVisionModelOnnxConfig): pixel_values [batch_size, C, H, W] → last_hidden_state
 * [batch_size, 1 + N, D] and pooler_output [batch_size, D] (the features `tlab metrics features --pooling pooled`
 * reads: ViT's layernormed CLS, CLIP's post_layernorm(CLS)), or logits [batch_size, num_labels]. Height and
 * width are the config's image_size: position embeddings are not interpolated (as in this project's models).
 * The VLM part, `vision_encoder.onnx`, maps pixel_values to image_features [batch_size, image_tokens, D_text]
 * (vision_feature_layer, the select strategy and the projector applied), which transformers.js's
 * LlavaForConditionalGeneration splices into the embeddings from `embed_tokens.onnx`.
 */
import { attr } from '../engine/onnx/model.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';
import type { ClipVisionConfig } from './clip-vision.ts';
import { type ExportGraph, OnnxBuilder } from './onnx-export-builder.ts';
import {
  activation,
  attention,
  ExportWeights,
  layerNorm,
  linear,
  mergeHeads,
  splitHeads,
} from './onnx-export-layers.ts';
import type { VisionEncoder } from './types.ts';
import type { VitConfig } from './vit.ts';
import type { LlavaConfig } from './vlm.ts';

export type VisionConfig = VitConfig | ClipVisionConfig;

const BATCH = 'batch_size';

interface VisionStates {
  /** The embeddings, then each computed layer's output (before any final norm), [B, 1 + N, D]. */
  states: string[];
  lastHidden: string;
  pooled: string;
}

/** Runs the tower up to `layers` blocks (all by default); the final norms only when all blocks ran. */
function visionTower(
  b: OnnxBuilder,
  w: ExportWeights,
  config: VisionConfig,
  pixels: string,
  layers = config.num_hidden_layers,
): VisionStates {
  const vit = config.model_type === 'vit';
  const root = vit ? 'vit' : 'vision_model';
  const d = config.hidden_size;
  const heads = config.num_attention_heads;
  const hd = d / heads;
  const p = config.patch_size;
  const eps = config.layer_norm_eps ?? (vit ? 1e-12 : 1e-5);
  const act = config.hidden_act ?? (vit ? 'gelu' : 'quick_gelu');
  const embeddings = b.scope(`${root}.embeddings`, () => {
    const weight = vit
      ? `${root}.embeddings.patch_embeddings.projection.weight`
      : `${root}.embeddings.patch_embedding.weight`;
    const convInputs = [pixels, w.get(weight)];
    if (vit) convInputs.push(w.get(`${root}.embeddings.patch_embeddings.projection.bias`));
    const conv = b.op('Conv', convInputs, [attr.ints('kernel_shape', [p, p]), attr.ints('strides', [p, p])]);
    const patches = b.transpose(b.reshape(conv, [0, d, -1]), [0, 2, 1]); // [B, N, D]
    const cls = vit
      ? w.get(`${root}.embeddings.cls_token`)
      : b.reshape(w.get(`${root}.embeddings.class_embedding`), [1, 1, d]);
    const batchShape = b.concat([b.dim(pixels, 0), b.ints([1, d])], 0);
    const tokens = b.concat([b.op('Expand', [cls, batchShape]), patches], 1);
    const pos = vit
      ? `${root}.embeddings.position_embeddings`
      : `${root}.embeddings.position_embedding.weight`;
    return b.add(tokens, w.get(pos));
  });
  let h = vit ? embeddings : layerNorm(b, w, `${root}.pre_layrnorm`, embeddings, eps);
  const states = [h];
  const shape = { heads, kvHeads: heads, headDim: hd, scale: 1 / Math.sqrt(hd) };
  for (let i = 0; i < layers; i++) {
    const l = vit ? `${root}.encoder.layer.${i}` : `${root}.encoder.layers.${i}`;
    h = b.scope(l, () => {
      if (vit) {
        const a = layerNorm(b, w, `${l}.layernorm_before`, h, eps);
        const qkvBias = config.qkv_bias ?? true;
        const proj = (n: string) =>
          splitHeads(b, linear(b, w, `${l}.attention.attention.${n}`, a, qkvBias), heads, hd);
        const y = attention(b, proj('query'), proj('key'), proj('value'), shape, null);
        const h1 = b.add(h, linear(b, w, `${l}.attention.output.dense`, mergeHeads(b, y, d), true));
        const m = layerNorm(b, w, `${l}.layernorm_after`, h1, eps);
        const inner = activation(b, act, linear(b, w, `${l}.intermediate.dense`, m, true));
        return b.add(h1, linear(b, w, `${l}.output.dense`, inner, true));
      }
      const a = layerNorm(b, w, `${l}.layer_norm1`, h, eps);
      const proj = (n: string) => splitHeads(b, linear(b, w, `${l}.self_attn.${n}`, a, true), heads, hd);
      const y = attention(b, proj('q_proj'), proj('k_proj'), proj('v_proj'), shape, null);
      const h1 = b.add(h, linear(b, w, `${l}.self_attn.out_proj`, mergeHeads(b, y, d), true));
      const m = layerNorm(b, w, `${l}.layer_norm2`, h1, eps);
      const inner = activation(b, act, linear(b, w, `${l}.mlp.fc1`, m, true));
      return b.add(h1, linear(b, w, `${l}.mlp.fc2`, inner, true));
    });
    states.push(h);
  }
  if (layers < config.num_hidden_layers) return { states, lastHidden: h, pooled: '' };
  const cls = (x: string) => b.squeeze(b.slice(x, 1, 0, 1), [1]);
  if (vit) {
    const last = layerNorm(b, w, `${root}.layernorm`, h, eps);
    return { states, lastHidden: last, pooled: cls(last) };
  }
  return { states, lastHidden: h, pooled: layerNorm(b, w, `${root}.post_layernorm`, cls(h), eps) };
}

function pixelInput(b: OnnxBuilder, encoder: VisionEncoder): string {
  return b.input('pixel_values', 'float32', [
    BATCH,
    encoder.numChannels,
    encoder.imageSize,
    encoder.imageSize,
  ]);
}

/** A vision encoder: pixel_values → last_hidden_state, pooler_output. */
export function visionEncoderGraph(
  config: VisionConfig,
  encoder: VisionEncoder,
  weights: ReadonlyMap<string, HostTensor>,
): ExportGraph {
  const b = new OnnxBuilder(`${config.model_type}-vision-encoder`);
  const w = new ExportWeights(b, weights);
  const t = visionTower(b, w, config, pixelInput(b, encoder));
  const d = encoder.hiddenSize;
  b.output('last_hidden_state', t.lastHidden, 'float32', [BATCH, encoder.numPatches + 1, d]);
  b.output('pooler_output', t.pooled, 'float32', [BATCH, d]);
  return b.build();
}

/** An image classifier: pixel_values → logits (ViT: the layernormed CLS; CLIP: the mean of the patch tokens). */
export function imageClassifierGraph(
  config: VisionConfig,
  encoder: VisionEncoder,
  numLabels: number,
  weights: ReadonlyMap<string, HostTensor>,
): ExportGraph {
  const b = new OnnxBuilder(`${config.model_type}-image-classifier`);
  const w = new ExportWeights(b, weights);
  const t = visionTower(b, w, config, pixelInput(b, encoder));
  const pooled =
    config.model_type === 'vit'
      ? t.pooled
      : b.op(
          'ReduceMean',
          [b.slice(t.lastHidden, 1, 1, encoder.numPatches + 1), b.ints([1])],
          [attr.int('keepdims', 0)],
        );
  b.output('logits', linear(b, w, 'classifier', pooled, true), 'float32', [BATCH, numLabels]);
  return b.build();
}

/** A LLaVA model's vision_encoder.onnx: pixel_values → projected image_features [batch_size, tokens, D_text]. */
export function llavaVisionGraph(
  config: LlavaConfig,
  encoder: VisionEncoder,
  textHidden: number,
  imageTokens: number,
  weights: ReadonlyMap<string, HostTensor>,
): ExportGraph {
  const b = new OnnxBuilder('llava-vision-encoder');
  const w = new ExportWeights(b, weights, 'vision_tower.');
  const vision = config.vision_config;
  const count = vision.num_hidden_layers + 1;
  const requested = config.vision_feature_layer ?? -2;
  const layers = (typeof requested === 'number' ? [requested] : requested).map((l) =>
    l < 0 ? count + l : l,
  );
  if (layers.some((l) => l < 0 || l >= count))
    throw new TlabError(`llava config: vision_feature_layer ${JSON.stringify(requested)} is out of range`);
  const t = visionTower(b, w, vision, pixelInput(b, encoder), Math.max(...layers));
  const full = (config.vision_feature_select_strategy ?? 'default') === 'full';
  const picked = layers.map((l) => (full ? t.states[l] : b.slice(t.states[l], 1, 1, encoder.numPatches + 1)));
  const x = picked.length === 1 ? picked[0] : b.concat(picked, -1);
  const pw = new ExportWeights(b, weights, 'multi_modal_projector.');
  const bias = config.multimodal_projector_bias ?? true;
  const features = b.scope('multi_modal_projector', () => {
    const y = linear(b, pw, 'linear_1', x, bias);
    if ((config.mm_projector_type ?? 'mlp2x_gelu') === 'linear') return y;
    return linear(b, pw, 'linear_2', activation(b, config.projector_hidden_act ?? 'gelu', y), bias);
  });
  b.output('image_features', features, 'float32', [BATCH, imageTokens, textHidden]);
  return b.build();
}
