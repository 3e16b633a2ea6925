/**
 * Lowers an IR graph to an ONNX graph: only the nodes needed for the requested outputs are emitted, constants
 * become initializers, and chosen graph inputs can be bound to data (frozen weights as initializers).
 */

import { TlabError } from '../../util/errors.ts';
import { type Graph, type Node, nodesNeededFor, type Value } from '../ir/graph.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import { type EmitContext, opDef } from '../ops/registry.ts';
import { type HostTensor, tensorBytes } from '../tensor.ts';
import type { OnnxAttr, OnnxGraph, OnnxNode, OnnxTensor, OnnxValueInfo } from './model.ts';

export interface LowerOptions {
  /** Graph outputs by name. */
  outputs: Readonly<Record<string, Value>>;
  /** Graph inputs to turn into initializers with this data (frozen weights). */
  bind?: ReadonlyMap<string, HostTensor>;
  /** Keep graph inputs that no output depends on (default false: they are dropped). */
  keepUnusedInputs?: boolean;
  name?: string;
  /** Prefix for generated names, so subgraphs do not collide with the outer graph. */
  prefix?: string;
}

export function onnxTensor(name: string, t: HostTensor): OnnxTensor {
  return { name, dtype: t.dtype, dims: t.shape, raw: tensorBytes(t) };
}

export class Lowering implements EmitContext {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly names = new Map<Value, string>();
  private counter = 0;
  private currentScope = '';

  constructor(
    readonly graph: Graph,
    private readonly prefix = '',
  ) {}

  setName(v: Value, name: string): void {
    this.names.set(v, name);
  }

  name(v: Value): string {
    let n = this.names.get(v);
    if (n === undefined) {
      if (v.inputName !== null) n = v.inputName;
      else if (this.graph.constants.has(v)) {
        n = `${this.prefix}const_${v.id}`;
        this.initializers.push(onnxTensor(n, this.graph.constants.get(v)!));
      } else n = `${this.prefix}v${v.id}`;
      this.names.set(v, n);
    }
    return n;
  }

  temp(hint = 't'): string {
    return `${this.prefix}${hint}_${this.counter++}`;
  }

  int64(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const data = new BigInt64Array(values.length);
    values.forEach((v, i) => {
      data[i] = BigInt(v);
    });
    return this.constant({ dtype: 'int64', shape, data });
  }

  constant(t: HostTensor): string {
    const n = this.temp('c');
    this.initializers.push(onnxTensor(n, t));
    return n;
  }

  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs?: readonly OnnxAttr[],
    domain?: string,
  ): void {
    const name = `${this.currentScope ? `${this.currentScope}/` : ''}${opType}_${this.nodes.length}`;
    this.nodes.push({
      opType,
      inputs,
      outputs,
      attrs,
      name: `${this.prefix}${name}`,
      ...(domain ? { domain } : {}),
    });
  }

  emitNode(node: Node): void {
    this.currentScope = node.scope;
    const def = opDef(node.op);
    if (def.emit) def.emit(this, node);
    else {
      this.node(
        def.onnxOp ?? node.op,
        node.inputs.map((v) => this.name(v)),
        node.outputs.map((v) => this.name(v)),
        def.attrs ? def.attrs(node.params) : [],
      );
    }
  }
}

export function valueInfo(
  name: string,
  v: { dtype: Value['dtype']; shape: readonly number[] },
): OnnxValueInfo {
  return { name, dtype: v.dtype, shape: v.shape };
}

/** Lowers `graph` to an ONNX graph with the given outputs. */
export function lowerGraph(graph: Graph, options: LowerOptions): OnnxGraph {
  const low = new Lowering(graph, options.prefix ?? '');
  const outputs = Object.entries(options.outputs);
  const bind = options.bind ?? new Map<string, HostTensor>();
  for (const [name] of bind) {
    if (!graph.inputs.has(name))
      throw new TlabError(`cannot bind '${name}': the graph has no input of that name`);
  }
  // Name producing nodes' outputs after the graph outputs where possible (avoids Identity nodes).
  const outputNodeNames = new Map<Value, string>();
  for (const [name, v] of outputs) {
    if (v.producer && !outputNodeNames.has(v)) {
      outputNodeNames.set(v, name);
      low.setName(v, name);
    }
  }
  const needed = nodesNeededFor(
    graph,
    outputs.map(([, v]) => v),
  );
  const usedInputs = new Set<Value>();
  for (const n of needed) for (const v of n.inputs) if (v.inputName !== null) usedInputs.add(v);
  for (const [, v] of outputs) if (v.inputName !== null) usedInputs.add(v);

  const inputs: OnnxValueInfo[] = [];
  for (const [name, v] of graph.inputs) {
    const data = bind.get(name);
    if (data) {
      if (data.dtype !== v.dtype || !sameShape(data.shape, v.shape)) {
        throw new TlabError(
          `cannot bind '${name}': data is ${data.dtype}${formatShape(data.shape)}, the graph expects ${v.dtype}${formatShape(v.shape)}`,
        );
      }
      if (usedInputs.has(v)) low.initializers.push(onnxTensor(name, data));
      continue;
    }
    if (usedInputs.has(v) || options.keepUnusedInputs) inputs.push(valueInfo(name, v));
  }
  for (const n of needed) low.emitNode(n);
  const outInfos: OnnxValueInfo[] = [];
  for (const [name, v] of outputs) {
    const current = low.name(v);
    if (current !== name) low.node('Identity', [current], [name]);
    outInfos.push(valueInfo(name, v));
  }
  return {
    name: options.name ?? 'transferlab',
    nodes: low.nodes,
    initializers: low.initializers,
    inputs,
    outputs: outInfos,
  };
}
