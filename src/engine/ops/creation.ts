/** Constant tensors made inside the graph: filled tensors (ConstantOfShape), ranges, causal masks. */

import { TlabError } from '../../util/errors.ts';
import type { DType } from '../dtype.ts';
import type { Graph, Value } from '../ir/graph.ts';
import { product } from '../ir/shape.ts';
import { onnxTensor } from '../onnx/lower.ts';
import { attr } from '../onnx/model.ts';
import { allocData, numel } from '../tensor.ts';
import { defineOp, type EmitContext } from './registry.ts';

/** Emits ConstantOfShape filling `shape` with `value` into the ONNX value `output`. */
export function emitFilled(
  ctx: EmitContext,
  output: string,
  dtype: DType,
  shape: readonly number[],
  value: number,
): void {
  const data = allocData(dtype, 1);
  if (data instanceof BigInt64Array) data[0] = BigInt(value);
  else data[0] = value;
  ctx.node(
    'ConstantOfShape',
    [ctx.int64(shape)],
    [output],
    [attr.tensor('value', onnxTensor('value', { dtype, shape: [1], data }))],
  );
}

defineOp('ConstantOfShape', {
  infer: (_inputs, p) => [{ dtype: p.dtype as DType, shape: p.shape as number[] }],
  emit: (ctx, n) =>
    emitFilled(
      ctx,
      ctx.name(n.outputs[0]),
      n.params.dtype as DType,
      n.params.shape as number[],
      n.params.value as number,
    ),
  nondifferentiable: true,
});

/**
 * A tensor filled with `value`. Small ones are stored constants; large ones are made at run time, so the model
 * file does not carry megabytes of zeros.
 */
export function fill(graph: Graph, dtype: DType, shape: readonly number[], value: number): Value {
  const n = product(shape);
  if (n <= 16) {
    const data = allocData(dtype, n);
    if (data instanceof BigInt64Array) data.fill(BigInt(value));
    else data.fill(value);
    return graph.constant({ dtype, shape: [...shape], data });
  }
  return graph.addNode('ConstantOfShape', [], { dtype, shape: [...shape], value }, [
    { dtype, shape: [...shape] },
  ])[0];
}

export const zeros = (graph: Graph, dtype: DType, shape: readonly number[]): Value =>
  fill(graph, dtype, shape, 0);
export const ones = (graph: Graph, dtype: DType, shape: readonly number[]): Value =>
  fill(graph, dtype, shape, 1);
export const zerosLike = (x: Value): Value => zeros(x.graph, x.dtype, x.shape);
export const onesLike = (x: Value): Value => ones(x.graph, x.dtype, x.shape);

/** A constant tensor from JS numbers. */
export function constant(
  graph: Graph,
  dtype: DType,
  shape: readonly number[],
  values: ArrayLike<number>,
): Value {
  if (values.length !== numel(shape)) {
    throw new TlabError(`constant: ${values.length} values do not fill shape [${shape.join(', ')}]`);
  }
  const data = allocData(dtype, values.length);
  if (data instanceof BigInt64Array) for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  else data.set(values as ArrayLike<number>);
  return graph.constant({ dtype, shape: [...shape], data });
}

/** [0, 1, ..., n-1] as a constant. */
export function arange(graph: Graph, n: number, dtype: DType = 'int64'): Value {
  return constant(
    graph,
    dtype,
    [n],
    Array.from({ length: n }, (_, i) => i),
  );
}

/** [T, T] bool mask, true where key position <= query position (causal attention). */
export function causalMask(graph: Graph, t: number): Value {
  const data = new Uint8Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j <= i; j++) data[i * t + j] = 1;
  return graph.constant({ dtype: 'bool', shape: [t, t], data });
}
