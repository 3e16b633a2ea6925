/**
 * CLIP's vision tower (Hugging Face CLIPVisionModel): class embedding + bias-free patch embedding + learned
 * positions, pre_layrnorm (sic), pre-LayerNorm blocks with quick_gelu, post_layernorm on the CLS token only.
 * Parameter names are the checkpoint's, under `vision_model.`.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { mergeHeads, scaledDotProductAttention, splitHeads } from '../nn/attention.ts';
import { layerNorm, linear } from '../nn/layers.ts';
import { init, type ParamBuilder } from '../nn/module.ts';
import { activation } from './gpt2.ts';
import type { VisionEncoder, VisionOutputs } from './types.ts';
import { checkPixels, geometryOf, patchEmbedding, visionEncoder } from './vision-common.ts';

export interface ClipVisionConfig {
  model_type: 'clip_vision_model';
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels?: number;
  image_size: number;
  patch_size: number;
  hidden_act?: string;
  layer_norm_eps?: number;
  attention_dropout?: number;
  initializer_range?: number;
  projection_dim?: number;
}

export function clipVisionForward(pb: ParamBuilder, config: ClipVisionConfig, pixels: Value): VisionOutputs {
  const g = geometryOf(config);
  const d = g.hidden;
  const eps = config.layer_norm_eps ?? 1e-5;
  const std = config.initializer_range ?? 0.02;
  const act = activation(config.hidden_act ?? 'quick_gelu', 'clip_vision_model config hidden_act');
  const n = checkPixels('clip_vision_model', pixels, g);
  const b = pixels.shape[0];
  return pb.scope('vision_model', () => {
    const emb = pb.scope('embeddings', () => {
      const cls = pb.param('class_embedding', [d], init.normal(std));
      const patches = patchEmbedding(pb, 'patch_embedding', pixels, g, false, std);
      const pos = pb.scope('position_embedding', () => pb.param('weight', [n + 1, d], init.normal(std)));
      return T.add(T.concat([T.expand(T.reshape(cls, [1, 1, d]), [b, 1, d]), patches], 1), pos);
    });
    let h = layerNorm(pb, 'pre_layrnorm', emb, d, eps);
    const hidden: Value[] = [h];
    for (let i = 0; i < config.num_hidden_layers; i++) {
      h = pb.scope(`encoder.layers.${i}`, () => {
        const a = layerNorm(pb, 'layer_norm1', h, d, eps);
        const attn = pb.scope('self_attn', () => {
          const proj = (name: string) =>
            splitHeads(linear(pb, name, a, d, d, { std }), config.num_attention_heads);
          const y = scaledDotProductAttention(proj('q_proj'), proj('k_proj'), proj('v_proj'), {
            dropout: config.attention_dropout ?? 0,
            ctx: pb.ctx,
          });
          return linear(pb, 'out_proj', mergeHeads(y), d, d, { std });
        });
        const h1 = T.add(h, attn);
        const m = layerNorm(pb, 'layer_norm2', h1, d, eps);
        const mlp = pb.scope('mlp', () =>
          linear(
            pb,
            'fc2',
            act(linear(pb, 'fc1', m, d, config.intermediate_size, { std })),
            config.intermediate_size,
            d,
            {
              std,
            },
          ),
        );
        return T.add(h1, mlp);
      });
      hidden.push(h);
    }
    const pooled = layerNorm(pb, 'post_layernorm', T.reshape(T.slice(h, [1], [0], [1]), [b, d]), d, eps);
    return { hiddenStates: hidden, lastHidden: h, pooled };
  });
}

export function clipVisionModel(config: ClipVisionConfig): VisionEncoder {
  return visionEncoder('clip_vision_model', config, (pb, pixels) => clipVisionForward(pb, config, pixels));
}
