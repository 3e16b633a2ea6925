/** Basic layers: Linear (torch layout), Conv1D (GPT-2's [in, out] layout), Embedding, LayerNorm, RMSNorm. */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { withLora } from './lora.ts';
import { init, type ParamBuilder } from './module.ts';
import { quantizedProjection, quantizes } from './quant.ts';

export interface LinearOptions {
  bias?: boolean;
  /** Weight init std (default 0.02, as GPT-2 and Llama use). */
  std?: number;
}

/** y = x Wᵀ + b with W [out, in] (torch.nn.Linear layout, as Llama/ViT/CLIP checkpoints store it). */
export function linear(
  pb: ParamBuilder,
  name: string,
  x: Value,
  inFeatures: number,
  outFeatures: number,
  options: LinearOptions = {},
): Value {
  return pb.scope(name, () => {
    const initial = init.normal(options.std ?? 0.02);
    const q = pb.quantize;
    let y =
      q && quantizes(q, pb.fullName('').replace(/\.$/, ''), outFeatures, inFeatures)
        ? quantizedProjection(pb, x, inFeatures, outFeatures, initial, q)
        : T.matmul(x, T.transpose(pb.param('weight', [outFeatures, inFeatures], initial), [1, 0]));
    if (options.bias !== false) y = T.add(y, pb.param('bias', [outFeatures], init.zeros));
    return withLora(pb, x, y, inFeatures, outFeatures, 'linear');
  });
}

/** y = x W + b with W [in, out] (GPT-2's Conv1D layout). */
export function conv1d(
  pb: ParamBuilder,
  name: string,
  x: Value,
  inFeatures: number,
  outFeatures: number,
  std = 0.02,
): Value {
  return pb.scope(name, () => {
    const w = pb.param('weight', [inFeatures, outFeatures], init.normal(std));
    const y = T.add(T.matmul(x, w), pb.param('bias', [outFeatures], init.zeros));
    return withLora(pb, x, y, inFeatures, outFeatures, 'conv1d');
  });
}

/** Embedding lookup: table [num, dim] gathered by int64 ids. Returns the output and the table (for tying). */
export function embedding(
  pb: ParamBuilder,
  name: string,
  ids: Value,
  num: number,
  dim: number,
  std = 0.02,
): { out: Value; table: Value } {
  return pb.scope(name, () => {
    const table = pb.param('weight', [num, dim], init.normal(std));
    return { out: T.gather(table, ids, 0), table };
  });
}

export function layerNorm(
  pb: ParamBuilder,
  name: string,
  x: Value,
  dim: number,
  eps: number,
  bias = true,
): Value {
  return pb.scope(name, () => {
    const w = pb.param('weight', [dim], init.ones);
    const b = bias ? pb.param('bias', [dim], init.zeros) : null;
    return T.layerNorm(x, w, b, eps);
  });
}

export function rmsNorm(pb: ParamBuilder, name: string, x: Value, dim: number, eps: number): Value {
  return pb.scope(name, () => T.rmsNorm(x, pb.param('weight', [dim], init.ones), eps));
}
