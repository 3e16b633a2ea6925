/**
 * LoRA (Hu et al. 2021) as PEFT implements it: for a targeted projection with weight W, y = W x + s · B(A(drop(x)))
 * with A [r, in] (Kaiming-uniform, bound 1/√in), B [out, r] zero-initialised (so an untrained adapter leaves the
 * model unchanged), s = α / r, or α / √r with rsLoRA. Merging folds s · B A into W on the host.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';
import { maybeDropout } from './attention.ts';
import { init, type ParamBuilder } from './module.ts';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout?: number;
  /** Scale by α/√r instead of α/r (rank-stabilised LoRA). */
  rsLora?: boolean;
  /**
   * Module paths to adapt: a string matches a module whose path ends with it (PEFT's target_modules, e.g.
   * "c_attn", "q_proj"); a RegExp is tested against the whole path (e.g. /^h\.\d+\.attn\./).
   */
  targets: readonly (string | RegExp)[];
}

/** Weight layout of an adapted module: torch Linear [out, in] or GPT-2 Conv1D [in, out]. */
export type WeightLayout = 'linear' | 'conv1d';

export interface LoraModule {
  path: string;
  layout: WeightLayout;
  inFeatures: number;
  outFeatures: number;
  scaling: number;
}

export function loraScaling(config: LoraConfig): number {
  return config.rsLora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

export function loraTargets(config: LoraConfig, path: string): boolean {
  return config.targets.some((t) =>
    typeof t === 'string' ? path === t || path.endsWith(`.${t}`) : t.test(path),
  );
}

/** Adds the LoRA branch to a projection's output when the module is targeted; called inside its scope. */
export function withLora(
  pb: ParamBuilder,
  x: Value,
  base: Value,
  inFeatures: number,
  outFeatures: number,
  layout: WeightLayout,
): Value {
  const config = pb.lora;
  const path = pb.fullName('').replace(/\.$/, '');
  if (!config || !loraTargets(config, path)) return base;
  if (!Number.isInteger(config.r) || config.r <= 0)
    throw new TlabError(`lora.r must be a positive integer, got ${config.r}`);
  const a = pb.param('lora_A.weight', [config.r, inFeatures], init.uniform(1 / Math.sqrt(inFeatures)));
  const b = pb.param('lora_B.weight', [outFeatures, config.r], init.zeros);
  const scaling = loraScaling(config);
  pb.loraModules.set(path, { path, layout, inFeatures, outFeatures, scaling });
  const h = T.matmul(
    T.matmul(maybeDropout(x, config.dropout ?? 0, pb.ctx), T.transpose(a, [1, 0])),
    T.transpose(b, [1, 0]),
  );
  return T.add(base, T.mul(h, scaling));
}

/** W + s · B A (or its transpose for Conv1D) for one module, computed on the host in float64. */
function mergedWeight(
  weight: HostTensor,
  a: HostTensor,
  b: HostTensor,
  m: LoraModule,
  sign: 1 | -1,
): HostTensor {
  const [r, inF] = a.shape;
  const outF = b.shape[0];
  const w = weight.data as Float32Array | Float64Array;
  const out = w.slice();
  const A = a.data as Float32Array | Float64Array;
  const B = b.data as Float32Array | Float64Array;
  for (let o = 0; o < outF; o++) {
    for (let i = 0; i < inF; i++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += B[o * r + k] * A[k * inF + i];
      const at = m.layout === 'linear' ? o * inF + i : i * outF + o;
      out[at] += sign * m.scaling * s;
    }
  }
  return { ...weight, data: out };
}

/** Folds every adapter into its base weight (returns new tensors; adapters are left as they are). */
export function mergeLora(
  params: ReadonlyMap<string, HostTensor>,
  modules: Iterable<LoraModule>,
  sign: 1 | -1 = 1,
): Map<string, HostTensor> {
  const out = new Map(params);
  for (const m of modules) {
    const get = (n: string) => {
      const t = params.get(`${m.path}.${n}`);
      if (!t) throw new TlabError(`LoRA merge: parameter '${m.path}.${n}' is missing`);
      return t;
    };
    out.set(
      `${m.path}.weight`,
      mergedWeight(get('weight'), get('lora_A.weight'), get('lora_B.weight'), m, sign),
    );
  }
  return out;
}

/** Inverse of mergeLora: subtracts s · B A from each base weight. */
export function unmergeLora(
  params: ReadonlyMap<string, HostTensor>,
  modules: Iterable<LoraModule>,
): Map<string, HostTensor> {
  return mergeLora(params, modules, -1);
}
