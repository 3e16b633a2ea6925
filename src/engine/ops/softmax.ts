/** Softmax and log-softmax over one axis, with closed-form VJPs. */

import { isFloat } from '../dtype.ts';
import type { Value } from '../ir/graph.ts';
import { normalizeAxis } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { exp, mul, sub } from './elementwise.ts';
import { reduceSum } from './reduce.ts';
import { apply1, defineOp, shapeError } from './registry.ts';

function inferSame(op: string) {
  return (inputs: readonly Value[]) => {
    if (!isFloat(inputs[0].dtype)) throw shapeError(op, inputs, 'needs a floating-point input');
    return [{ dtype: inputs[0].dtype, shape: inputs[0].shape }];
  };
}

defineOp('Softmax', {
  infer: inferSame('Softmax'),
  attrs: (p) => [attr.int('axis', p.axis as number)],
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return [null];
    const y = n.outputs[0];
    // dX = Y ⊙ (dY − Σ dY ⊙ Y)
    return [mul(y, sub(g, reduceSum(mul(g, y), n.params.axis as number, true)))];
  },
});

defineOp('LogSoftmax', {
  infer: inferSame('LogSoftmax'),
  attrs: (p) => [attr.int('axis', p.axis as number)],
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return [null];
    // dX = dY − softmax(X) ⊙ Σ dY
    return [sub(g, mul(exp(n.outputs[0]), reduceSum(g, n.params.axis as number, true)))];
  },
});

export function softmax(x: Value, axis = -1): Value {
  return apply1('Softmax', [x], { axis: normalizeAxis('Softmax', axis, x.rank) });
}

export function logSoftmax(x: Value, axis = -1): Value {
  return apply1('LogSoftmax', [x], { axis: normalizeAxis('LogSoftmax', axis, x.rank) });
}
