/**
 * Optimizer updates emitted as graph ops, so one onnxruntime run performs a whole training step. Semantics follow
 * torch.optim: AdamW (decoupled weight decay applied before the Adam update, bias correction as in torch) and SGD
 * (coupled weight decay, momentum buffer initialised to the first gradient, optional Nesterov).
 */

import { TlabError } from '../../util/errors.ts';
import type { Value } from '../ir/graph.ts';
import * as T from '../ops/index.ts';

export interface AdamWConfig {
  kind: 'adamw';
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface SgdConfig {
  kind: 'sgd';
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export type OptimizerConfig = AdamWConfig | SgdConfig;

/** Names of the optimizer state tensors kept per parameter. */
export function stateNames(config: OptimizerConfig, param: string): string[] {
  if (config.kind === 'adamw') return [`optim.m.${param}`, `optim.v.${param}`];
  return (config.momentum ?? 0) > 0 ? [`optim.momentum.${param}`] : [];
}

export interface UpdateInputs {
  param: Value;
  /** The raw (unclipped) gradient. */
  grad: Value;
  /** grad², when already computed for the global norm (shared to save a pass over the parameter). */
  gradSq?: Value | null;
  /** Scalar factor from gradient clipping (min(1, max/‖g‖)), folded into the update; null = no clipping. */
  gradScale?: Value | null;
  state: Value[];
  /** Learning rate (float scalar) for this parameter's group. */
  lr: Value;
  /** 1-based step count (float scalar). */
  t: Value;
  /** Weight decay for this parameter (0 disables it, e.g. for biases and norms). */
  weightDecay: number;
}

export interface UpdateResult {
  param: Value;
  state: Value[];
}

export function applyUpdate(config: OptimizerConfig, u: UpdateInputs): UpdateResult {
  if (config.kind === 'adamw') return adamw(config, u);
  if (config.kind === 'sgd') return sgd(config, u);
  throw new TlabError(`unknown optimizer kind '${(config as { kind: string }).kind}'; valid: adamw, sgd`);
}

/**
 * AdamW with the per-element work kept to a minimum, because on CPU these memory-bound passes over every
 * parameter cost as much as the matmuls: the clip factor and bias corrections are folded into scalars, and
 * √v/√bc2 + ε is computed as (√v + ε√bc2)/√bc2 with the 1/√bc2 moved into the step size (exact algebra).
 */
function adamw(config: AdamWConfig, u: UpdateInputs): UpdateResult {
  const { param, grad, state, lr, t, weightDecay } = u;
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = config;
  const [m0, v0] = state;
  const scale = u.gradScale ?? null;
  const g2 = u.gradSq ?? T.mul(grad, grad);
  const s1 = scale ? T.mul(scale, 1 - beta1) : 1 - beta1;
  const s2 = scale ? T.mul(T.mul(scale, scale), 1 - beta2) : 1 - beta2;
  const m = T.add(T.mul(m0, beta1), T.mul(grad, s1));
  const v = T.add(T.mul(v0, beta2), T.mul(g2, s2));
  const bc1 = T.sub(1, T.pow(T.scalar(t, beta1), t));
  const sqrtBc2 = T.sqrt(T.sub(1, T.pow(T.scalar(t, beta2), t)));
  const denom = T.add(T.sqrt(v), T.mul(sqrtBc2, eps));
  const stepSize = T.div(T.mul(lr, sqrtBc2), bc1);
  const decayed = weightDecay > 0 ? T.mul(param, T.sub(1, T.mul(lr, weightDecay))) : param;
  return { param: T.sub(decayed, T.mul(T.div(m, denom), stepSize)), state: [m, v] };
}

function sgd(config: SgdConfig, u: UpdateInputs): UpdateResult {
  const { param, state, lr, t, weightDecay } = u;
  const { momentum = 0, dampening = 0, nesterov = false } = config;
  let g = u.gradScale ? T.mul(u.grad, u.gradScale) : u.grad;
  if (weightDecay > 0) g = T.add(g, T.mul(param, weightDecay));
  if (momentum > 0) {
    const first = T.equal(t, 1);
    const buf = T.where(first, g, T.add(T.mul(state[0], momentum), T.mul(g, 1 - dampening)));
    g = nesterov ? T.add(g, T.mul(buf, momentum)) : buf;
    return { param: T.sub(param, T.mul(lr, g)), state: [buf] };
  }
  return { param: T.sub(param, T.mul(lr, g)), state: [] };
}

export interface GlobalNorm {
  /** ‖g‖ over all gradients, before clipping. */
  norm: Value;
  /** Per-gradient g², reusable by the optimizer. */
  squares: Value[];
  /** min(1, max / (‖g‖ + 1e-6)) as torch.nn.utils.clip_grad_norm_, or null without clipping. */
  scale: Value | null;
}

/** The global gradient norm and, with `maxNorm`, the clipping factor torch's clip_grad_norm_ would apply. */
export function globalNorm(grads: readonly Value[], maxNorm: number | null): GlobalNorm {
  if (grads.length === 0) throw new TlabError('globalNorm: no gradients');
  const squares = grads.map((g) => T.mul(g, g));
  let sq: Value | null = null;
  for (const s of squares) {
    const r = T.reduceSum(s);
    sq = sq ? T.add(sq, r) : r;
  }
  const norm = T.sqrt(sq!);
  const scale = maxNorm === null ? null : T.minimum(T.div(maxNorm, T.add(norm, 1e-6)), 1);
  return { norm, squares, scale };
}
