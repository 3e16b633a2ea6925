/** Reductions over static axes (sum, mean, max, min), arg-max, and their VJPs. */
import type { Node, Params, TensorType, Value } from '../ir/graph.ts';
import { normalizeAxes } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { cast, div, equal, mul } from './elementwise.ts';
import { expand, reshape } from './movement.ts';
import { apply1, defineOp, type EmitContext, shapeError } from './registry.ts';

function reducedShape(shape: readonly number[], axes: readonly number[], keepdims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

function inferReduce(op: string) {
  return (inputs: readonly Value[], p: Params): TensorType[] => {
    const [x] = inputs;
    const axes = p.axes as number[];
    for (const a of axes) {
      if (a < 0 || a >= x.rank) throw shapeError(op, inputs, `axis ${a} out of range`);
    }
    return [{ dtype: x.dtype, shape: reducedShape(x.shape, axes, p.keepdims as boolean) }];
  };
}

function emitReduce(onnxOp: string) {
  return (ctx: EmitContext, node: Node): void => {
    const axes = node.params.axes as number[];
    const x = ctx.name(node.inputs[0]);
    const y = ctx.name(node.outputs[0]);
    if (axes.length === 0) ctx.node('Identity', [x], [y]);
    else ctx.node(onnxOp, [x, ctx.int64(axes)], [y], [attr.int('keepdims', node.params.keepdims ? 1 : 0)]);
  };
}

/** Broadcasts a reduced cotangent back over the reduced axes. */
function expandBack(g: Value, x: Value, axes: readonly number[]): Value {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return expand(reshape(g, kept), x.shape);
}

defineOp('ReduceSum', {
  infer: inferReduce('ReduceSum'),
  emit: emitReduce('ReduceSum'),
  vjp: (n, cts) => [cts[0] ? expandBack(cts[0], n.inputs[0], n.params.axes as number[]) : null],
});

defineOp('ReduceMean', {
  infer: inferReduce('ReduceMean'),
  emit: emitReduce('ReduceMean'),
  vjp: (n, cts) => {
    if (!cts[0]) return [null];
    const x = n.inputs[0];
    const axes = n.params.axes as number[];
    const count = axes.reduce((c, a) => c * x.shape[a], 1);
    return [expandBack(div(cts[0], count), x, axes)];
  },
});

function extremumVjp(n: Node, g: Value | null): (Value | null)[] {
  // The gradient is shared evenly among all elements equal to the extremum (as torch.amax does).
  if (!g) return [null];
  const x = n.inputs[0];
  const axes = n.params.axes as number[];
  const y = expandBack(n.outputs[0], x, axes);
  const mask = cast(equal(x, y), x.dtype);
  const count = expandBack(reduceSum(mask, axes, Boolean(n.params.keepdims)), x, axes);
  return [mul(expandBack(g, x, axes), div(mask, count))];
}

defineOp('ReduceMax', {
  infer: inferReduce('ReduceMax'),
  emit: emitReduce('ReduceMax'),
  vjp: (n, c) => extremumVjp(n, c[0]),
});
defineOp('ReduceMin', {
  infer: inferReduce('ReduceMin'),
  emit: emitReduce('ReduceMin'),
  vjp: (n, c) => extremumVjp(n, c[0]),
});

defineOp('ArgMax', {
  infer: (inputs, p) => [
    { dtype: 'int64', shape: reducedShape(inputs[0].shape, [p.axis as number], p.keepdims as boolean) },
  ],
  attrs: (p) => [attr.int('axis', p.axis as number), attr.int('keepdims', p.keepdims ? 1 : 0)],
  nondifferentiable: true,
});

function reduceWith(
  op: string,
  x: Value,
  axes: number | readonly number[] | undefined,
  keepdims: boolean,
): Value {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
  return apply1(op, [x], { axes: normalizeAxes(op, list, x.rank), keepdims });
}

/** Sum over `axes` (all when omitted). */
export const reduceSum = (x: Value, axes?: number | readonly number[], keepdims = false): Value =>
  reduceWith('ReduceSum', x, axes, keepdims);
export const reduceMean = (x: Value, axes?: number | readonly number[], keepdims = false): Value =>
  reduceWith('ReduceMean', x, axes, keepdims);
export const reduceMax = (x: Value, axes?: number | readonly number[], keepdims = false): Value =>
  reduceWith('ReduceMax', x, axes, keepdims);
export const reduceMin = (x: Value, axes?: number | readonly number[], keepdims = false): Value =>
  reduceWith('ReduceMin', x, axes, keepdims);

export function argmax(x: Value, axis = -1, keepdims = false): Value {
  const a = normalizeAxes('ArgMax', [axis], x.rank)[0];
  return apply1('ArgMax', [x], { axis: a, keepdims });
}
