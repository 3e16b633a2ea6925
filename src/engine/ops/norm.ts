/** Layer normalization (ONNX LayerNormalization with a hand-written VJP) and RMS normalization (composed). */
import type { Value } from '../ir/graph.ts';
import { normalizeAxis } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { add, cast, mul, rsqrt, sub } from './elementwise.ts';
import { reduceMean, reduceSum } from './reduce.ts';
import { apply, defineOp, shapeError } from './registry.ts';

defineOp('LayerNormalization', {
  infer: (inputs, p) => {
    const [x, scale, bias] = inputs;
    const axis = p.axis as number;
    const normShape = x.shape.slice(axis);
    for (const w of [scale, bias]) {
      if (w && (w.rank !== normShape.length || w.shape.some((d, i) => d !== normShape[i]))) {
        throw shapeError(
          'LayerNormalization',
          inputs,
          `scale and bias must have shape [${normShape.join(', ')}]`,
        );
      }
    }
    const stats = x.shape.map((d, i) => (i < axis ? d : 1));
    // Mean/InvStdDev are float32 for any input type (stash_type 1, the only one with CPU kernels).
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'float32', shape: stats },
      { dtype: 'float32', shape: stats },
    ];
  },
  attrs: (p) => [attr.int('axis', p.axis as number), attr.float('epsilon', p.epsilon as number)],
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return n.inputs.map(() => null);
    const [x, scale, bias] = n.inputs;
    const axis = n.params.axis as number;
    const axes = x.shape.map((_, i) => i).slice(axis);
    const lead = x.shape.map((_, i) => i).slice(0, axis);
    let mean: Value;
    let inv: Value;
    if (x.dtype === 'float32') {
      mean = n.outputs[1];
      inv = n.outputs[2];
    } else {
      // The float32 stash would limit float64 gradients to ~1e-7; recompute the statistics in x's precision.
      mean = reduceMean(x, axes, true);
      const xc = sub(x, mean);
      inv = rsqrt(add(reduceMean(mul(xc, xc), axes, true), n.params.epsilon as number));
      mean = cast(mean, x.dtype);
    }
    const xhat = mul(sub(x, cast(mean, x.dtype)), cast(inv, x.dtype));
    const gs = mul(g, scale);
    const dx = mul(
      cast(inv, x.dtype),
      sub(sub(gs, reduceMean(gs, axes, true)), mul(xhat, reduceMean(mul(gs, xhat), axes, true))),
    );
    const dscale = reduceSum(mul(g, xhat), lead, false);
    const dbias = bias ? reduceSum(g, lead, false) : null;
    return bias ? [dx, dscale, dbias] : [dx, dscale];
  },
});

/** LayerNorm over the axes from `axis` to the end: (x − mean) / √(var + ε) · scale + bias. */
export function layerNorm(x: Value, scale: Value, bias: Value | null, epsilon = 1e-5, axis = -1): Value {
  const a = normalizeAxis('LayerNormalization', axis, x.rank);
  return apply('LayerNormalization', bias ? [x, scale, bias] : [x, scale], { axis: a, epsilon })[0];
}

/** RMSNorm (Llama, Qwen2): x / √(mean(x²) + ε) · scale; computed in x's dtype. */
export function rmsNorm(x: Value, scale: Value, epsilon = 1e-6): Value {
  const r = rsqrt(add(reduceMean(mul(x, x), -1, true), epsilon));
  return mul(mul(x, r), scale);
}
