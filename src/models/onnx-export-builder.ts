/**
 * A small builder for ONNX graphs with symbolic (dynamic) dimensions, used by the portable exports. The engine's
 * IR has static shapes (one compiled graph per batch size and length), while an export that other runtimes
 * drive (transformers.js, optimum, onnxruntime-web) must accept any batch size and sequence length, so exported
 * graphs are written here directly as ONNX nodes whose shape arithmetic happens in the graph (Shape, Concat,
 * Reshape with 0/-1). Weights are initializers named after the Hugging Face parameters they come from.
 */
import type { DType } from '../engine/dtype.ts';
import type {
  OnnxAttr,
  OnnxDim,
  OnnxGraph,
  OnnxNode,
  OnnxTensor,
  OnnxValueInfo,
} from '../engine/onnx/model.ts';
import { attr } from '../engine/onnx/model.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { tensorBytes } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';

/** The lowest finite float32: masked attention scores, as Hugging Face and this project's forward use. */
export const MASK_MIN = -3.4028234663852886e38;

/** An exported graph and the names of its weight initializers (what fp16 conversion and quantization touch). */
export interface ExportGraph {
  graph: OnnxGraph;
  weights: ReadonlySet<string>;
}

export class OnnxBuilder {
  readonly nodes: OnnxNode[] = [];
  /** Initializers added through tensor(): model weights, as opposed to shape and scalar constants. */
  readonly weightNames = new Set<string>();
  readonly initializers: OnnxTensor[] = [];
  readonly inputs: OnnxValueInfo[] = [];
  readonly outputs: OnnxValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private readonly scopes: string[] = [];
  private counter = 0;

  constructor(readonly name: string) {}

  input(name: string, dtype: DType, shape: readonly OnnxDim[]): string {
    this.claim(name);
    this.inputs.push({ name, dtype, shape });
    return name;
  }

  /** Declares `value` as the graph output `name` (renaming through Identity when needed). */
  output(name: string, value: string, dtype: DType, shape: readonly OnnxDim[]): void {
    if (value !== name) {
      this.claim(name);
      this.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name], name: `${name}/Identity` });
    }
    this.outputs.push({ name, dtype, shape });
  }

  /** An initializer under a fixed name (a weight). */
  tensor(name: string, t: HostTensor): string {
    this.claim(name);
    this.initializers.push({ name, dtype: t.dtype, dims: [...t.shape], raw: tensorBytes(t) });
    this.weightNames.add(name);
    return name;
  }

  /** A small constant (axes, shapes, scalars), shared between uses. */
  constant(
    dtype: 'int64' | 'float32',
    values: readonly number[],
    dims: readonly number[] = [values.length],
  ): string {
    const key = `${dtype}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const data = dtype === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values);
    const name = this.fresh('const');
    this.initializers.push({ name, dtype, dims: [...dims], raw: tensorBytes({ dtype, shape: dims, data }) });
    this.constCache.set(key, name);
    return name;
  }

  ints(values: readonly number[]): string {
    return this.constant('int64', values);
  }

  scalarInt(value: number): string {
    return this.constant('int64', [value], []);
  }

  scalarFloat(value: number): string {
    return this.constant('float32', [value], []);
  }

  /** One node with one output; returns the output's name. */
  op(opType: string, inputs: readonly string[], attrs: readonly OnnxAttr[] = [], domain?: string): string {
    return this.opN(opType, inputs, 1, attrs, domain)[0];
  }

  opN(
    opType: string,
    inputs: readonly string[],
    count: number,
    attrs: readonly OnnxAttr[] = [],
    domain?: string,
  ): string[] {
    const base = this.fresh(opType);
    const outputs = Array.from({ length: count }, (_, i) => (count === 1 ? base : `${base}_${i}`));
    for (const o of outputs) this.names.add(o);
    this.nodes.push({ opType, inputs, outputs, attrs, name: base, ...(domain ? { domain } : {}) });
    return outputs;
  }

  /** Runs `fn` with `name` on the scope path that prefixes generated names (e.g. "h.0/attn/MatMul_12"). */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  build(): ExportGraph {
    const graph: OnnxGraph = {
      name: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
    };
    return { graph, weights: this.weightNames };
  }

  // ------------------------------------------------------------------ arithmetic and shapes

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }

  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }

  matmul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], [attr.ints('perm', perm)]);
  }

  /** Reshape with ONNX's 0 (copy the input's dim) and -1 (infer) codes: shape-agnostic for the copied axes. */
  reshape(x: string, dims: readonly number[]): string {
    return this.op('Reshape', [x, this.ints(dims)]);
  }

  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }

  squeeze(x: string, axes: readonly number[]): string {
    return this.op('Squeeze', [x, this.ints(axes)]);
  }

  concat(xs: readonly string[], axis: number): string {
    return this.op('Concat', xs, [attr.int('axis', axis)]);
  }

  cast(x: string, to: 'float32' | 'int64' | 'bool'): string {
    return this.op('Cast', [x], [attr.int('to', to === 'float32' ? 1 : to === 'int64' ? 7 : 9)]);
  }

  /** The size of axis `axis` of `x` as an int64 [1] tensor. */
  dim(x: string, axis: number): string {
    return this.op('Shape', [x], [attr.int('start', axis), attr.int('end', axis + 1)]);
  }

  /** x[..., start:end] along `axis` (static bounds). */
  slice(x: string, axis: number, start: number, end: number): string {
    return this.op('Slice', [x, this.ints([start]), this.ints([end]), this.ints([axis])]);
  }

  /** Splits the last axis into equal parts. */
  splitLast(x: string, sizes: readonly number[]): string[] {
    return this.opN('Split', [x, this.ints(sizes)], sizes.length, [attr.int('axis', -1)]);
  }

  private fresh(hint: string): string {
    const scope = this.scopes.join('/');
    let name: string;
    do name = `${scope ? `/${scope}/` : ''}${hint}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new TlabError(`ONNX export: value '${name}' is defined twice`);
    this.names.add(name);
  }
}
