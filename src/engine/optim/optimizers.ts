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
  grad: Value;
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

function adamw(config: AdamWConfig, { param, grad, state, lr, t, weightDecay }: UpdateInputs): UpdateResult {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = config;
  const [m0, v0] = state;
  const decayed = weightDecay > 0 ? T.mul(param, T.sub(1, T.mul(lr, weightDecay))) : param;
  const m = T.add(T.mul(m0, beta1), T.mul(grad, 1 - beta1));
  const v = T.add(T.mul(v0, beta2), T.mul(T.mul(grad, grad), 1 - beta2));
  const bc1 = T.sub(1, T.pow(T.scalar(t, beta1), t));
  const bc2 = T.sub(1, T.pow(T.scalar(t, beta2), t));
  const denom = T.add(T.div(T.sqrt(v), T.sqrt(bc2)), eps);
  const stepSize = T.div(lr, bc1);
  return { param: T.sub(decayed, T.mul(stepSize, T.div(m, denom))), state: [m, v] };
}

function sgd(config: SgdConfig, { param, grad, state, lr, t, weightDecay }: UpdateInputs): UpdateResult {
  const { momentum = 0, dampening = 0, nesterov = false } = config;
  let g = weightDecay > 0 ? T.add(grad, T.mul(param, weightDecay)) : grad;
  if (momentum > 0) {
    const first = T.equal(t, 1);
    const buf = T.where(first, g, T.add(T.mul(state[0], momentum), T.mul(g, 1 - dampening)));
    g = nesterov ? T.add(g, T.mul(buf, momentum)) : buf;
    return { param: T.sub(param, T.mul(lr, g)), state: [buf] };
  }
  return { param: T.sub(param, T.mul(lr, g)), state: [] };
}

/**
 * Global-norm clipping as torch.nn.utils.clip_grad_norm_: scale every gradient by min(1, max / (‖g‖ + 1e-6)).
 * Returns the clipped gradients and the norm before clipping.
 */
export function clipByGlobalNorm(
  grads: readonly Value[],
  maxNorm: number | null,
): { grads: Value[]; norm: Value } {
  let sq: Value | null = null;
  for (const g of grads) {
    const s = T.reduceSum(T.mul(g, g));
    sq = sq ? T.add(sq, s) : s;
  }
  if (!sq) throw new TlabError('clipByGlobalNorm: no gradients');
  const norm = T.sqrt(sq);
  if (maxNorm === null) return { grads: [...grads], norm };
  const coef = T.minimum(T.div(maxNorm, T.add(norm, 1e-6)), 1);
  return { grads: grads.map((g) => T.mul(g, coef)), norm };
}
