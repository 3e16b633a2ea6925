import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DType } from '../../src/engine/dtype.ts';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { ParameterStore } from '../../src/engine/runtime/param-store.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import { TrainStep } from '../../src/engine/runtime/train-step.ts';
import { fromFloat32 } from '../../src/engine/tensor.ts';
import { TlabError } from '../../src/util/errors.ts';

function oneLine(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof TlabError, `expected a TlabError, got ${e}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.match(e.message, pattern);
    return true;
  });
}

test('shape mismatches name the op, its module scope and both shapes', () => {
  const g = new Graph();
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 5]);
  oneLine(
    () => g.withScope('h.0.mlp', () => T.matmul(a, b)),
    /^MatMul \(in h\.0\.mlp\): inner dimensions differ \(3 vs 4\); inputs float32\[2, 3\], float32\[4, 5\]$/,
  );
  oneLine(() => T.add(a, b), /^Add: shapes do not broadcast; inputs float32\[2, 3\], float32\[4, 5\]$/);
  oneLine(() => T.reshape(a, [4, 2]), /^Reshape: cannot reshape 6 elements to \[4, 2\]/);
  const c = g.input('c', 'float64', [2, 3]);
  oneLine(() => T.mul(a, c), /^Mul: operand dtypes differ \(float32 vs float64\)/);
});

test('an unknown dtype is rejected with the valid ones', () => {
  oneLine(
    () => new Graph().input('x', 'float8' as DType, [2]),
    /^graph input 'x': unknown dtype 'float8'; valid: float32, float64/,
  );
});

test('feeding a program: missing input, wrong shape or dtype', async () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const p = await Program.compile(g, { outputs: { y: T.exp(x) } });
  await assert.rejects(p.run({}), /^TlabError: missing input 'x' \(float32\[2\]\)/);
  await assert.rejects(
    p.run({ x: fromFloat32([3], [1, 2, 3]) }),
    /input 'x': got float32\[3\], the program expects float32\[2\]/,
  );
});

test('training: a parameter missing from the store and a batch missing an input are named', async () => {
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const w = g.input('w', 'float32', [2]);
  const step = await TrainStep.compile({
    graph: g,
    loss: T.reduceSum(T.mul(x, w)),
    trainable: [w],
    optimizer: { kind: 'sgd' },
  });
  const store = new ParameterStore();
  await assert.rejects(
    step.run(store, [{ data: { x: fromFloat32([2], [1, 2]) }, lr: [0.1] }], 0),
    /parameter 'w' is missing from the parameter store/,
  );
  store.set('w', fromFloat32([2], [1, 1]));
  await assert.rejects(step.run(store, [{ data: {}, lr: [0.1] }], 0), /training batch is missing input 'x'/);
  await assert.rejects(
    step.run(store, [{ data: { x: fromFloat32([2], [1, 2]) }, lr: [0.1, 0.2] }], 0),
    /got 2 values for 1 groups/,
  );
  await step.release();
});

test('grad refuses non-scalar losses and integer inputs', async () => {
  const { grad } = await import('../../src/engine/autodiff/grad.ts');
  const g = new Graph();
  const x = g.input('x', 'float32', [2]);
  const i = g.input('i', 'int64', [2]);
  oneLine(() => grad(T.exp(x), [x]), /loss .* is not a scalar/);
  oneLine(() => grad(T.reduceSum(x), [i]), /cannot differentiate with respect to i: int64\[2\]/);
});
