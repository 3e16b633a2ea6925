/**
 * Op definitions: each op has shape/dtype inference, ONNX emission and (if differentiable) a VJP written with
 * other ops, so the backward graph is plain ONNX too. Ops register themselves when their family module loads.
 */

import { TlabError } from '../../util/errors.ts';
import type { Graph, Node, Params, TensorType, Value } from '../ir/graph.ts';
import { formatShape } from '../ir/shape.ts';
import type { OnnxAttr } from '../onnx/model.ts';
import type { HostTensor } from '../tensor.ts';

/** What an op's emitter can do while lowering one node. */
export interface EmitContext {
  /** The ONNX value name of an IR value. */
  name(v: Value): string;
  /** A fresh ONNX value name for intermediates. */
  temp(hint?: string): string;
  /** An int64 initializer (axes, shapes, pads...). */
  int64(values: readonly number[], shape?: readonly number[]): string;
  /** An arbitrary constant initializer. */
  constant(t: HostTensor): string;
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs?: readonly OnnxAttr[],
    /** Operator domain, e.g. 'com.microsoft' for onnxruntime's contrib ops; default the standard one. */
    domain?: string,
  ): void;
}

export type Cotangents = readonly (Value | null)[];

export interface OpDef {
  /** Output types from input types and params; throws a TlabError naming the op and shapes on mismatch. */
  infer(inputs: readonly Value[], params: Params): TensorType[];
  /** ONNX emission; defaults to one node of type `onnxOp ?? name` with `attrs(params)`. */
  emit?(ctx: EmitContext, node: Node): void;
  onnxOp?: string;
  attrs?(params: Params): OnnxAttr[];
  /** Input cotangents given output cotangents (null = zero). Absent: the op is not differentiable. */
  vjp?(node: Node, cotangents: Cotangents): (Value | null)[];
  /** Outputs never carry gradient (comparisons, integer results, masks). */
  nondifferentiable?: boolean;
}

const registry = new Map<string, OpDef>();

export function defineOp(name: string, def: OpDef): void {
  if (registry.has(name)) throw new Error(`op ${name} defined twice`);
  registry.set(name, def);
}

export function opDef(name: string): OpDef {
  const def = registry.get(name);
  if (!def) throw new TlabError(`unknown op '${name}'`);
  return def;
}

export function registeredOps(): string[] {
  return [...registry.keys()].sort();
}

/** Applies an op: infers output types and records the node in the inputs' graph. */
export function apply(op: string, inputs: readonly Value[], params: Params = {}): Value[] {
  const def = opDef(op);
  const graph = inputs[0]?.graph;
  if (!graph) throw new TlabError(`${op}: needs at least one tensor input`);
  const types = def.infer(inputs, params);
  return graph.addNode(op, inputs, params, types);
}

export function apply1(op: string, inputs: readonly Value[], params: Params = {}): Value {
  return apply(op, inputs, params)[0];
}

/** Error helper for inference: names the op (with its module scope) and the input shapes. */
export function shapeError(op: string, inputs: readonly Value[], what: string): TlabError {
  const scope = inputs[0]?.graph.scope();
  const shapes = inputs.map((v) => `${v.dtype}${formatShape(v.shape)}`).join(', ');
  return new TlabError(`${op}${scope ? ` (in ${scope})` : ''}: ${what}; inputs ${shapes}`);
}

export function graphOf(...values: (Value | number)[]): Graph {
  for (const v of values) if (typeof v !== 'number') return v.graph;
  throw new TlabError('an op needs at least one tensor operand');
}
