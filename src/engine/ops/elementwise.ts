/** Elementwise ops with numpy broadcasting: arithmetic, unary math, comparisons, where and cast. */
import type { DType } from '../dtype.ts';
import { isFloat, ONNX_DTYPE } from '../dtype.ts';
import type { Node, Params, TensorType, Value } from '../ir/graph.ts';
import { broadcastShapes } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { allocData } from '../tensor.ts';
import { unbroadcast } from './broadcast.ts';
import { apply1, type Cotangents, defineOp, graphOf, shapeError } from './registry.ts';

export type TensorLike = Value | number;

/** A scalar constant with the dtype of `like`. */
export function scalar(like: Value, value: number): Value {
  const data = allocData(like.dtype, 1);
  if (data instanceof BigInt64Array) data[0] = BigInt(value);
  else data[0] = value;
  return like.graph.constant({ dtype: like.dtype, shape: [], data });
}

function lift(a: TensorLike, b: TensorLike): [Value, Value] {
  graphOf(a, b); // throws when both are numbers
  const va = typeof a === 'number' ? scalar(b as Value, a) : a;
  const vb = typeof b === 'number' ? scalar(va, b) : b;
  return [va, vb];
}

function inferBinary(op: string, resultDtype?: DType) {
  return (inputs: readonly Value[]): TensorType[] => {
    const [a, b] = inputs;
    if (a.dtype !== b.dtype) throw shapeError(op, inputs, `operand dtypes differ (${a.dtype} vs ${b.dtype})`);
    try {
      return [{ dtype: resultDtype ?? a.dtype, shape: broadcastShapes(op, a.shape, b.shape) }];
    } catch {
      throw shapeError(op, inputs, 'shapes do not broadcast');
    }
  };
}

function inferUnary(op: string, floatOnly = true) {
  return (inputs: readonly Value[]): TensorType[] => {
    const [a] = inputs;
    if (floatOnly && !isFloat(a.dtype)) throw shapeError(op, inputs, `needs a floating-point input`);
    return [{ dtype: a.dtype, shape: a.shape }];
  };
}

const binaryVjps: Record<string, (n: Node, g: Value) => (Value | null)[]> = {
  Add: (n, g) => [unbroadcast(g, n.inputs[0].shape), unbroadcast(g, n.inputs[1].shape)],
  Sub: (n, g) => [unbroadcast(g, n.inputs[0].shape), unbroadcast(neg(g), n.inputs[1].shape)],
  Mul: (n, g) => {
    const [a, b] = n.inputs;
    return [unbroadcast(mul(g, b), a.shape), unbroadcast(mul(g, a), b.shape)];
  },
  Div: (n, g) => {
    const [a, b] = n.inputs;
    const y = n.outputs[0];
    return [unbroadcast(div(g, b), a.shape), unbroadcast(neg(mul(g, div(y, b))), b.shape)];
  },
  Pow: (n, g) => {
    const [a, b] = n.inputs;
    const y = n.outputs[0];
    const da = mul(g, mul(b, pow(a, sub(b, 1))));
    // d/db a^b = a^b ln a, defined for a > 0; zero elsewhere instead of NaN.
    const positive = greater(a, scalar(a, 0));
    const safeA = where(positive, a, scalar(a, 1));
    const db = where(positive, mul(g, mul(y, log(safeA))), scalar(a, 0));
    return [unbroadcast(da, a.shape), unbroadcast(db, b.shape)];
  },
  Max: (n, g) => {
    // Ties split the gradient in half, as tinygrad does; each side gets it where it is the larger.
    const [a, b] = n.inputs;
    const wa = add(cast(greater(a, b), a.dtype), mul(cast(equal(a, b), a.dtype), 0.5));
    const wb = sub(1, wa);
    return [unbroadcast(mul(g, wa), a.shape), unbroadcast(mul(g, wb), b.shape)];
  },
  Min: (n, g) => {
    const [a, b] = n.inputs;
    const wa = add(cast(less(a, b), a.dtype), mul(cast(equal(a, b), a.dtype), 0.5));
    const wb = sub(1, wa);
    return [unbroadcast(mul(g, wa), a.shape), unbroadcast(mul(g, wb), b.shape)];
  },
};

for (const [op, rule] of Object.entries(binaryVjps)) {
  defineOp(op, {
    infer: inferBinary(op),
    vjp: (node: Node, cts: Cotangents) => (cts[0] ? rule(node, cts[0]) : [null, null]),
  });
}

const unaryVjps: Record<string, (x: Value, y: Value, g: Value) => Value> = {
  Neg: (_x, _y, g) => neg(g),
  Exp: (_x, y, g) => mul(g, y),
  Log: (x, _y, g) => div(g, x),
  Sqrt: (_x, y, g) => div(mul(g, 0.5), y),
  Reciprocal: (_x, y, g) => neg(mul(g, mul(y, y))),
  Tanh: (_x, y, g) => mul(g, sub(1, mul(y, y))),
  Sigmoid: (_x, y, g) => mul(g, mul(y, sub(1, y))),
  Relu: (x, _y, g) => mul(g, cast(greater(x, scalar(x, 0)), x.dtype)),
  Abs: (x, _y, g) => mul(g, sign(x)),
  Sin: (x, _y, g) => mul(g, cos(x)),
  Cos: (x, _y, g) => neg(mul(g, sin(x))),
  Erf: (x, _y, g) => mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI))),
};

for (const [op, rule] of Object.entries(unaryVjps)) {
  defineOp(op, {
    infer: inferUnary(op, op !== 'Neg' && op !== 'Abs'),
    vjp: (node, cts) => [cts[0] ? rule(node.inputs[0], node.outputs[0], cts[0]) : null],
  });
}
defineOp('Sign', { infer: inferUnary('Sign', false), nondifferentiable: true });

for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']) {
  defineOp(op, { infer: inferBinary(op, 'bool'), nondifferentiable: true });
}
defineOp('Not', {
  infer: (inputs) => {
    if (inputs[0].dtype !== 'bool') throw shapeError('Not', inputs, 'needs a bool input');
    return [{ dtype: 'bool', shape: inputs[0].shape }];
  },
  nondifferentiable: true,
});
defineOp('IsNaN', { infer: (i) => [{ dtype: 'bool', shape: i[0].shape }], nondifferentiable: true });
defineOp('IsInf', { infer: (i) => [{ dtype: 'bool', shape: i[0].shape }], nondifferentiable: true });

defineOp('Where', {
  infer: (inputs) => {
    const [c, a, b] = inputs;
    if (c.dtype !== 'bool') throw shapeError('Where', inputs, 'condition must be bool');
    if (a.dtype !== b.dtype)
      throw shapeError('Where', inputs, `branch dtypes differ (${a.dtype} vs ${b.dtype})`);
    try {
      return [{ dtype: a.dtype, shape: broadcastShapes('Where', c.shape, a.shape, b.shape) }];
    } catch {
      throw shapeError('Where', inputs, 'shapes do not broadcast');
    }
  },
  vjp: (node, cts) => {
    const g = cts[0];
    if (!g) return [null, null, null];
    const [c, a, b] = node.inputs;
    const zero = scalar(g, 0);
    return [null, unbroadcast(where(c, g, zero), a.shape), unbroadcast(where(c, zero, g), b.shape)];
  },
});

defineOp('Cast', {
  infer: (inputs, p) => [{ dtype: p.to as DType, shape: inputs[0].shape }],
  attrs: (p) => [attr.int('to', ONNX_DTYPE[p.to as DType])],
  vjp: (node, cts) => {
    const x = node.inputs[0];
    if (!cts[0] || !isFloat(x.dtype)) return [null];
    return [cast(cts[0], x.dtype)];
  },
});

defineOp('Gelu', {
  infer: inferUnary('Gelu'),
  attrs: (p: Params) => [attr.string('approximate', p.approximate as string)],
  vjp: (node, cts) => {
    const g = cts[0];
    if (!g) return [null];
    const x = node.inputs[0];
    return [mul(g, geluDerivative(x, node.params.approximate as string))];
  },
});

/** d/dx gelu(x): exact Φ(x) + xφ(x); tanh form differentiates 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
function geluDerivative(x: Value, approximate: string): Value {
  if (approximate === 'tanh') {
    const c = Math.sqrt(2 / Math.PI);
    const x2 = mul(x, x);
    const u = mul(mul(x, add(mul(x2, 0.044715), 1)), c);
    const t = tanh(u);
    const du = mul(add(mul(x2, 3 * 0.044715), 1), c);
    return add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), du));
  }
  const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return add(cdf, mul(x, pdf));
}

// ---- functional API ----
export const add = (a: TensorLike, b: TensorLike): Value => apply1('Add', lift(a, b));
export const sub = (a: TensorLike, b: TensorLike): Value => apply1('Sub', lift(a, b));
export const mul = (a: TensorLike, b: TensorLike): Value => apply1('Mul', lift(a, b));
export const div = (a: TensorLike, b: TensorLike): Value => apply1('Div', lift(a, b));
export const pow = (a: TensorLike, b: TensorLike): Value => apply1('Pow', lift(a, b));
export const maximum = (a: TensorLike, b: TensorLike): Value => apply1('Max', lift(a, b));
export const minimum = (a: TensorLike, b: TensorLike): Value => apply1('Min', lift(a, b));
export const neg = (x: Value): Value => apply1('Neg', [x]);
export const exp = (x: Value): Value => apply1('Exp', [x]);
export const log = (x: Value): Value => apply1('Log', [x]);
export const sqrt = (x: Value): Value => apply1('Sqrt', [x]);
export const reciprocal = (x: Value): Value => apply1('Reciprocal', [x]);
export const rsqrt = (x: Value): Value => reciprocal(sqrt(x));
export const tanh = (x: Value): Value => apply1('Tanh', [x]);
export const sigmoid = (x: Value): Value => apply1('Sigmoid', [x]);
export const relu = (x: Value): Value => apply1('Relu', [x]);
export const abs = (x: Value): Value => apply1('Abs', [x]);
export const sin = (x: Value): Value => apply1('Sin', [x]);
export const cos = (x: Value): Value => apply1('Cos', [x]);
export const erf = (x: Value): Value => apply1('Erf', [x]);
export const sign = (x: Value): Value => apply1('Sign', [x]);
export const square = (x: Value): Value => mul(x, x);
export const equal = (a: TensorLike, b: TensorLike): Value => apply1('Equal', lift(a, b));
export const notEqual = (a: TensorLike, b: TensorLike): Value => logicalNot(equal(a, b));
export const less = (a: TensorLike, b: TensorLike): Value => apply1('Less', lift(a, b));
export const greater = (a: TensorLike, b: TensorLike): Value => apply1('Greater', lift(a, b));
export const lessEqual = (a: TensorLike, b: TensorLike): Value => apply1('LessOrEqual', lift(a, b));
export const greaterEqual = (a: TensorLike, b: TensorLike): Value => apply1('GreaterOrEqual', lift(a, b));
export const logicalAnd = (a: Value, b: Value): Value => apply1('And', [a, b]);
export const logicalOr = (a: Value, b: Value): Value => apply1('Or', [a, b]);
export const logicalNot = (a: Value): Value => apply1('Not', [a]);
export const isNan = (x: Value): Value => apply1('IsNaN', [x]);
export const isInfinite = (x: Value): Value => apply1('IsInf', [x]);

/** Elementwise select; numbers take the dtype of the tensor branch. */
export function where(cond: Value, a: TensorLike, b: TensorLike): Value {
  const [va, vb] = lift(a, b);
  return apply1('Where', [cond, va, vb]);
}

export function cast(x: Value, to: DType): Value {
  if (x.dtype === to) return x;
  return apply1('Cast', [x], { to });
}

/** GELU: 'none' is the exact erf form (ViT, BERT), 'tanh' the approximation (GPT-2's gelu_new). */
export function gelu(x: Value, approximate: 'none' | 'tanh' = 'none'): Value {
  return apply1('Gelu', [x], { approximate });
}

/** SiLU / swish: x·σ(x) (Llama, Qwen2 MLPs). */
export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

/** CLIP's quick_gelu: x·σ(1.702x). */
export function quickGelu(x: Value): Value {
  return mul(x, sigmoid(mul(x, 1.702)));
}
