/**
 * ViT (Hugging Face ViTModel / ViTForImageClassification): patch embedding + CLS token + learned positions,
 * pre-LayerNorm blocks with exact GELU and eps 1e-12, final layernorm. Parameter names are the
 * ViTForImageClassification checkpoint's, under `vit.` (a ViTModel file has them without the prefix); the
 * optional ViTModel pooler (dense + tanh) is not built: the pooled output is the layernormed CLS token, as
 * ViTForImageClassification reads it.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { maybeDropout, mergeHeads, scaledDotProductAttention, splitHeads } from '../nn/attention.ts';
import { layerNorm, linear } from '../nn/layers.ts';
import { init, type ParamBuilder } from '../nn/module.ts';
import { activation } from './gpt2.ts';
import type { VisionEncoder, VisionOutputs } from './types.ts';
import { checkPixels, geometryOf, patchEmbedding, visionEncoder } from './vision-common.ts';

export interface VitConfig {
  model_type: 'vit';
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act?: string;
  hidden_dropout_prob?: number;
  attention_probs_dropout_prob?: number;
  initializer_range?: number;
  layer_norm_eps?: number;
  image_size: number;
  patch_size: number;
  num_channels?: number;
  qkv_bias?: boolean;
}

export function vitForward(pb: ParamBuilder, config: VitConfig, pixels: Value): VisionOutputs {
  const g = geometryOf(config);
  const d = g.hidden;
  const eps = config.layer_norm_eps ?? 1e-12;
  const std = config.initializer_range ?? 0.02;
  const hiddenDrop = config.hidden_dropout_prob ?? 0;
  const act = activation(config.hidden_act ?? 'gelu', 'vit config hidden_act');
  const n = checkPixels('vit', pixels, g);
  const b = pixels.shape[0];
  return pb.scope('vit', () => {
    let h = pb.scope('embeddings', () => {
      const patches = pb.scope('patch_embeddings', () =>
        patchEmbedding(pb, 'projection', pixels, g, true, std),
      );
      const cls = pb.param('cls_token', [1, 1, d], init.normal(std));
      const pos = pb.param('position_embeddings', [1, n + 1, d], init.normal(std));
      return T.add(T.concat([T.expand(cls, [b, 1, d]), patches], 1), pos);
    });
    h = maybeDropout(h, hiddenDrop, pb.ctx);
    const hidden: Value[] = [h];
    for (let i = 0; i < config.num_hidden_layers; i++) {
      h = pb.scope(`encoder.layer.${i}`, () => {
        const a = layerNorm(pb, 'layernorm_before', h, d, eps);
        const attn = pb.scope('attention', () => {
          const y = pb.scope('attention', () => {
            const proj = (name: string) =>
              splitHeads(
                linear(pb, name, a, d, d, { bias: config.qkv_bias ?? true, std }),
                config.num_attention_heads,
              );
            return scaledDotProductAttention(proj('query'), proj('key'), proj('value'), {
              dropout: config.attention_probs_dropout_prob ?? 0,
              ctx: pb.ctx,
            });
          });
          return maybeDropout(
            pb.scope('output', () => linear(pb, 'dense', mergeHeads(y), d, d, { std })),
            hiddenDrop,
            pb.ctx,
          );
        });
        const h1 = T.add(h, attn);
        const m = layerNorm(pb, 'layernorm_after', h1, d, eps);
        const inner = pb.scope('intermediate', () =>
          act(linear(pb, 'dense', m, d, config.intermediate_size, { std })),
        );
        const out = pb.scope('output', () =>
          linear(pb, 'dense', inner, config.intermediate_size, d, { std }),
        );
        return T.add(h1, maybeDropout(out, hiddenDrop, pb.ctx));
      });
      hidden.push(h);
    }
    const last = layerNorm(pb, 'layernorm', h, d, eps);
    const pooled = T.reshape(T.slice(last, [1], [0], [1]), [b, d]);
    return { hiddenStates: hidden, lastHidden: last, pooled };
  });
}

export function vitModel(config: VitConfig): VisionEncoder {
  return visionEncoder('vit', config, (pb, pixels) => vitForward(pb, config, pixels));
}
