/**
 * Parameters for model code on the engine. A model is a function that declares its parameters through a
 * ParamBuilder (as graph inputs named by their Hugging Face paths) and builds its forward graph; which
 * parameters are trained and which are frozen is decided later, when the graph is compiled.
 */
import type { DType } from '../engine/dtype.ts';
import type { Graph, Value } from '../engine/ir/graph.ts';
import { allocData, type HostTensor, numel } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';
import { Rng } from '../util/random.ts';
import type { LoraConfig, LoraModule } from './lora.ts';
import type { QuantizeConfig, QuantModule } from './quant.ts';

export type Init =
  | { readonly kind: 'normal'; readonly std: number }
  | { readonly kind: 'uniform'; readonly bound: number }
  | { readonly kind: 'zeros' }
  | { readonly kind: 'ones' };

export const init = {
  normal: (std: number): Init => ({ kind: 'normal', std }),
  uniform: (bound: number): Init => ({ kind: 'uniform', bound }),
  zeros: { kind: 'zeros' } as Init,
  ones: { kind: 'ones' } as Init,
};

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly init: Init;
}

/** What a forward pass needs besides parameters: training mode and the dropout key for this step. */
export interface ForwardContext {
  readonly training: boolean;
  /** int64 [2] dropout key input; dropout is skipped when null. */
  readonly dropoutKey: Value | null;
}

export const EVAL: ForwardContext = { training: false, dropoutKey: null };

export class ParamBuilder {
  readonly specs = new Map<string, ParamSpec>();
  /** Modules that received a LoRA adapter while the graph was built (for merging and export). */
  readonly loraModules = new Map<string, LoraModule>();
  /** Linear modules whose weight the graph reads as 4-bit codes (QLoRA), by path. */
  readonly quantModules = new Map<string, QuantModule>();
  private readonly path: string[] = [];

  constructor(
    readonly graph: Graph,
    readonly dtype: DType = 'float32',
    /** When set, projections whose module path matches `lora.targets` get an adapter. */
    readonly lora: LoraConfig | null = null,
    /** Training mode and dropout key for everything built with this builder. */
    readonly ctx: ForwardContext = EVAL,
    /** When set, Linear weights are declared as 4-bit codes and block scales (a QLoRA base); see nn/quant.ts. */
    readonly quantize: QuantizeConfig | null = null,
  ) {}

  /**
   * Declares a parameter under the current path (e.g. "h.0.attn.c_attn.weight") as a graph input; `dtype`
   * defaults to the builder's (4-bit codes are uint8).
   */
  param(name: string, shape: readonly number[], initial: Init, dtype: DType = this.dtype): Value {
    const full = this.fullName(name);
    if (this.specs.has(full)) throw new TlabError(`parameter '${full}' is declared twice`);
    this.specs.set(full, { name: full, shape: [...shape], dtype, init: initial });
    return this.graph.input(full, dtype, shape);
  }

  /** Runs `fn` with `name` appended to the parameter path and the graph's scope. */
  scope<T>(name: string, fn: () => T): T {
    if (name === '') return fn();
    this.path.push(name);
    try {
      return this.graph.withScope(name, fn);
    } finally {
      this.path.pop();
    }
  }

  fullName(name: string): string {
    return [...this.path, name].join('.');
  }
}

/** Initial values for parameters; each tensor's stream depends only on (seed, name), not on declaration order. */
export function initParams(specs: Iterable<ParamSpec>, seed: number): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const spec of specs) out.set(spec.name, initTensor(spec, seed));
  return out;
}

export function initTensor(spec: ParamSpec, seed: number): HostTensor {
  const n = numel(spec.shape);
  const values = new Float64Array(n);
  const rng = Rng.at(seed, spec.name);
  switch (spec.init.kind) {
    case 'normal':
      for (let i = 0; i < n; i++) values[i] = rng.normal() * spec.init.std;
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) values[i] = (rng.next() * 2 - 1) * spec.init.bound;
      break;
    case 'ones':
      values.fill(1);
      break;
    case 'zeros':
      break;
  }
  const data = allocData(spec.dtype, n);
  if (data instanceof Float32Array || data instanceof Float64Array) data.set(values);
  else throw new TlabError(`parameter '${spec.name}': cannot initialise dtype ${spec.dtype}`);
  return { dtype: spec.dtype, shape: [...spec.shape], data };
}
