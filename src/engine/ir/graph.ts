/**
 * The engine's IR: a graph of nodes over symbolic tensors (Values) with static shapes and dtypes. Ops record
 * nodes into the graph that owns their inputs; nothing is computed until the graph is compiled to ONNX.
 */

import { TlabError } from '../../util/errors.ts';
import { DTYPES, type DType } from '../dtype.ts';
import type { HostTensor } from '../tensor.ts';
import { formatShape, type Shape } from './shape.ts';

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/** A symbolic tensor: a graph input, a constant, or an output of a node. */
export class Value implements TensorType {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly producer: Node | null,
    /** Set for graph inputs: the name callers feed. */
    readonly inputName: string | null = null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }

  toString(): string {
    return `${this.inputName ?? `%${this.id}`}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

/** Params are plain JS data (numbers, strings, arrays) interpreted by the op's definition. */
export type Params = Readonly<Record<string, unknown>>;

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly params: Params;
  /** Module path active when the node was recorded (e.g. "h.0.attn"), for errors and ONNX node names. */
  readonly scope: string;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs = new Map<string, Value>();
  readonly constants = new Map<Value, HostTensor>();
  private nextId = 0;
  private readonly scopeStack: string[] = [];
  private readonly constantCache = new Map<string, Value>();

  /** Declares a named graph input (a batch tensor, a trainable parameter, an optimizer state...). */
  input(name: string, dtype: DType, shape: Shape): Value {
    if (this.inputs.has(name)) throw new TlabError(`graph input '${name}' is declared twice`);
    if (!DTYPES.includes(dtype)) {
      throw new TlabError(`graph input '${name}': unknown dtype '${dtype}'; valid: ${DTYPES.join(', ')}`);
    }
    checkShape(`input '${name}'`, shape);
    const v = new Value(this, this.nextId++, dtype, [...shape], null, name);
    this.inputs.set(name, v);
    return v;
  }

  /** A constant tensor; small constants with equal content share one Value. */
  constant(tensor: HostTensor): Value {
    const small = tensor.data.byteLength <= 64;
    const key = small ? constantKey(tensor) : '';
    if (small) {
      const hit = this.constantCache.get(key);
      if (hit) return hit;
    }
    const v = new Value(this, this.nextId++, tensor.dtype, [...tensor.shape], null);
    this.constants.set(v, tensor);
    if (small) this.constantCache.set(key, v);
    return v;
  }

  isConstant(v: Value): boolean {
    return this.constants.has(v);
  }

  /** Records a node; called by op definitions after shape inference. */
  addNode(op: string, inputs: readonly Value[], params: Params, outputTypes: readonly TensorType[]): Value[] {
    for (const v of inputs) {
      if (v.graph !== this) throw new TlabError(`${op}: input ${v} belongs to another graph`);
    }
    const outputs: Value[] = [];
    const node: Node = {
      id: this.nodes.length,
      op,
      inputs: [...inputs],
      outputs,
      params,
      scope: this.scope(),
    };
    for (const t of outputTypes) outputs.push(new Value(this, this.nextId++, t.dtype, [...t.shape], node));
    this.nodes.push(node);
    return outputs;
  }

  /** Runs `fn` with `name` pushed on the scope path (module names in errors and node names). */
  withScope<T>(name: string, fn: () => T): T {
    this.scopeStack.push(name);
    try {
      return fn();
    } finally {
      this.scopeStack.pop();
    }
  }

  scope(): string {
    return this.scopeStack.join('.');
  }
}

function checkShape(what: string, shape: Shape): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TlabError(`${what}: shape ${formatShape(shape)} must hold non-negative integers`);
  }
}

function constantKey(t: HostTensor): string {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return `${t.dtype}|${t.shape.join(',')}|${Buffer.from(bytes).toString('base64')}`;
}

/** Values reachable backwards from `roots` (the nodes that are needed to compute them), in graph order. */
export function nodesNeededFor(graph: Graph, roots: readonly Value[]): Node[] {
  const needed = new Set<Node>();
  const stack: Value[] = [...roots];
  while (stack.length) {
    const v = stack.pop()!;
    const p = v.producer;
    if (!p || needed.has(p)) continue;
    needed.add(p);
    for (const x of p.inputs) stack.push(x);
  }
  return graph.nodes.filter((n) => needed.has(n));
}
