/**
 * What ViT and CLIP share: the config's image geometry, the patch embedding (a Conv2d with kernel = stride =
 * patch size, written as reshape → transpose → matmul so it is differentiable with standard ops and runs in
 * float64 for gradient checks; the weight keeps Hugging Face's Conv2d shape [D, C, P, P]) and the VisionEncoder
 * object.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { init, type ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import type { VisionEncoder, VisionOutputs } from './types.ts';

/** The config fields both vision configs share (HF names). */
export interface VisionGeometryFields {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  image_size: number;
  patch_size: number;
  num_channels?: number;
}

export interface PatchGeometry {
  imageSize: number;
  patchSize: number;
  numChannels: number;
  hidden: number;
}

/** Checks pixel values [B, C, H, W] against the config; returns the patch count. */
export function checkPixels(where: string, pixels: Value, g: PatchGeometry): number {
  const [, c, h, w] = pixels.shape;
  if (pixels.rank !== 4 || c !== g.numChannels || h !== g.imageSize || w !== g.imageSize)
    throw new TlabError(
      `${where}: pixel values ${pixels} must be [B, ${g.numChannels}, ${g.imageSize}, ${g.imageSize}] (config image_size, num_channels); position embeddings are not interpolated`,
    );
  return (g.imageSize / g.patchSize) ** 2;
}

/** [B, C, H, W] → [B, N, D], patches in row-major order (as Conv2d output flattened over H', W'). */
export function patchEmbedding(
  pb: ParamBuilder,
  name: string,
  pixels: Value,
  g: PatchGeometry,
  bias: boolean,
  std = 0.02,
): Value {
  const [b, c, h, w] = pixels.shape;
  const p = g.patchSize;
  const [gh, gw] = [h / p, w / p];
  return pb.scope(name, () => {
    const weight = pb.param('weight', [g.hidden, c, p, p], init.normal(std));
    const patches = T.reshape(T.transpose(T.reshape(pixels, [b, c, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]), [
      b,
      gh * gw,
      c * p * p,
    ]);
    const y = T.matmul(patches, T.transpose(T.reshape(weight, [g.hidden, c * p * p]), [1, 0]));
    return bias ? T.add(y, pb.param('bias', [g.hidden], init.zeros)) : y;
  });
}

export function geometryOf(config: VisionGeometryFields): PatchGeometry {
  return {
    imageSize: config.image_size,
    patchSize: config.patch_size,
    numChannels: config.num_channels ?? 3,
    hidden: config.hidden_size,
  };
}

/** The VisionEncoder for a config, its geometry checked once. */
export function visionEncoder(
  modelType: string,
  config: VisionGeometryFields,
  forward: (pb: ParamBuilder, pixels: Value) => VisionOutputs,
): VisionEncoder {
  const g = geometryOf(config);
  const where = `${modelType} config`;
  if (g.imageSize % g.patchSize !== 0)
    throw new TlabError(`${where}: image_size ${g.imageSize} is not a multiple of patch_size ${g.patchSize}`);
  if (g.hidden % config.num_attention_heads !== 0)
    throw new TlabError(
      `${where}: hidden_size ${g.hidden} is not divisible by num_attention_heads ${config.num_attention_heads}`,
    );
  return {
    modelType,
    hiddenSize: g.hidden,
    numLayers: config.num_hidden_layers,
    numHeads: config.num_attention_heads,
    imageSize: g.imageSize,
    patchSize: g.patchSize,
    numChannels: g.numChannels,
    numPatches: (g.imageSize / g.patchSize) ** 2,
    forward,
  };
}
