/**
 * Gelu and Erf have no float64 kernels in onnxruntime, so they are checked in float32 against closed forms
 * evaluated in float64 in JS: the forward values and the VJP (derivative) to 1e-6 relative.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../src/engine/autodiff/grad.ts';
import type { Value } from '../../src/engine/ir/graph.ts';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import { maxRelDiff } from './helpers.ts';

/** erf to ~1e-15 by its Maclaurin series (|x| <= 3) or continued fraction for erfc. */
function erf(x: number): number {
  if (Math.abs(x) > 3) {
    // Lentz evaluation of the erfc continued fraction.
    const z = Math.abs(x);
    let f = z;
    let c = z;
    let d = 0;
    for (let k = 1; k < 200; k++) {
      const a = k / 2;
      d = z + a * d;
      d = 1 / d;
      c = z + a / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
    return Math.sign(x) * (1 - erfc);
  }
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const xs = Array.from({ length: 41 }, (_, i) => -5 + i * 0.25 + 0.013);
const c = Math.sqrt(2 / Math.PI);
const refs: Record<
  string,
  { f: (x: number) => number; df: (x: number) => number; build: (v: Value) => Value }
> = {
  erf: { f: erf, df: (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x), build: T.erf },
  'gelu exact': {
    f: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    df: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp((-x * x) / 2)) / Math.sqrt(2 * Math.PI),
    build: (v) => T.gelu(v, 'none'),
  },
  'gelu tanh': {
    f: (x) => 0.5 * x * (1 + Math.tanh(c * (x + 0.044715 * x ** 3))),
    df: (x) => {
      const t = Math.tanh(c * (x + 0.044715 * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
    },
    build: (v) => T.gelu(v, 'tanh'),
  },
  'quick gelu': {
    f: (x) => x / (1 + Math.exp(-1.702 * x)),
    df: (x) => {
      const s = 1 / (1 + Math.exp(-1.702 * x));
      return s + 1.702 * x * s * (1 - s);
    },
    build: T.quickGelu,
  },
};

for (const [name, ref] of Object.entries(refs)) {
  test(`${name}: float32 forward and VJP match the closed form to 1e-6`, async () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [xs.length]);
    const y = ref.build(x);
    const [dx] = grad(T.reduceSum(y), [x]);
    const p = await Program.compile(g, { outputs: { y, dx } });
    const input = Float32Array.from(xs);
    const r = await p.run({ x: { dtype: 'float32', shape: [xs.length], data: input } });
    const xf = Array.from(input); // the float32-rounded inputs the graph saw
    assert.ok(maxRelDiff(r.y.data as Float32Array, xf.map(ref.f)) < 1e-6, 'forward');
    assert.ok(maxRelDiff(r.dx.data as Float32Array, xf.map(ref.df)) < 1e-6, 'derivative');
  });
}
