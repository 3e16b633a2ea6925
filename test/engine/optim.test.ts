import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import type { OptimizerConfig } from '../../src/engine/optim/optimizers.ts';
import { lrMultiplier } from '../../src/engine/optim/schedule.ts';
import { ParameterStore } from '../../src/engine/runtime/param-store.ts';
import { TrainStep } from '../../src/engine/runtime/train-step.ts';
import { maxRelDiff } from './helpers.ts';

interface Fixture {
  X: number[];
  Y: number[];
  W0: number[];
  b0: number[];
  cases: Record<
    string,
    { options: Record<string, number | boolean | number[]>; losses: number[]; W: number[]; b: number[] }
  >;
}
const fx = JSON.parse(readFileSync('test/fixtures/engine/optim.json', 'utf8')) as Fixture;

function configFor(name: string, o: Record<string, number | boolean | number[]>): OptimizerConfig {
  if (name.startsWith('sgd')) {
    return {
      kind: 'sgd',
      momentum: (o.momentum as number) ?? 0,
      dampening: (o.dampening as number) ?? 0,
      nesterov: Boolean(o.nesterov),
    };
  }
  const [beta1, beta2] = o.betas as number[];
  return { kind: 'adamw', beta1, beta2, eps: o.eps as number };
}

describe('optimizers match torch.optim on least squares (float64)', () => {
  for (const [name, c] of Object.entries(fx.cases)) {
    test(name, async () => {
      const graph = new Graph();
      const x = graph.input('x', 'float64', [8, 5]);
      const y = graph.input('y', 'float64', [8, 3]);
      const w = graph.input('W', 'float64', [5, 3]);
      const b = graph.input('b', 'float64', [3]);
      const r = T.sub(T.add(T.matmul(x, w), b), y);
      const loss = T.reduceMean(T.mul(r, r));
      const step = await TrainStep.compile({
        graph,
        loss,
        trainable: [w, b],
        optimizer: configFor(name, c.options),
        groups: [{ name: 'all', params: ['W', 'b'], weightDecay: (c.options.weight_decay as number) ?? 0 }],
      });
      const store = new ParameterStore([
        ['W', { dtype: 'float64', shape: [5, 3], data: Float64Array.from(fx.W0) }],
        ['b', { dtype: 'float64', shape: [3], data: Float64Array.from(fx.b0) }],
      ]);
      step.initState(store);
      const data = {
        x: { dtype: 'float64' as const, shape: [8, 5], data: Float64Array.from(fx.X) },
        y: { dtype: 'float64' as const, shape: [8, 3], data: Float64Array.from(fx.Y) },
      };
      const losses: number[] = [];
      for (let i = 0; i < 6; i++)
        losses.push(...(await step.run(store, [{ data, lr: [c.options.lr as number] }], i)).losses);
      assert.ok(maxRelDiff(losses, c.losses) < 1e-10, `losses ${losses} vs ${c.losses}`);
      assert.ok(maxRelDiff(store.get('W').data as Float64Array, c.W) < 1e-10);
      assert.ok(maxRelDiff(store.get('b').data as Float64Array, c.b) < 1e-10);
      await step.release();
    });
  }
});

describe('learning-rate schedules', () => {
  test('linear warmup then cosine decay to minRatio', () => {
    const cfg = { kind: 'cosine' as const, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 };
    assert.equal(lrMultiplier(cfg, 0), 0.1);
    assert.equal(lrMultiplier(cfg, 9), 1);
    assert.ok(Math.abs(lrMultiplier(cfg, 10) - 1) < 1e-12);
    assert.ok(Math.abs(lrMultiplier(cfg, 60) - (0.1 + 0.9 * 0.5)) < 1e-12);
    assert.ok(Math.abs(lrMultiplier(cfg, 110) - 0.1) < 1e-12);
    assert.ok(Math.abs(lrMultiplier(cfg, 500) - 0.1) < 1e-12, 'clamped after the end');
  });
  test('linear decay and constant', () => {
    const lin = { kind: 'linear' as const, totalSteps: 100 };
    assert.equal(lrMultiplier(lin, 0), 1);
    assert.ok(Math.abs(lrMultiplier(lin, 25) - 0.75) < 1e-12);
    assert.equal(lrMultiplier({ kind: 'constant', warmupSteps: 4 }, 1), 0.5);
    assert.equal(lrMultiplier({ kind: 'constant' }, 1000), 1);
  });
  test('a decaying schedule without totalSteps is a clear error', () => {
    assert.throws(() => lrMultiplier({ kind: 'cosine', warmupSteps: 5 }, 6), /needs totalSteps/);
  });
});

describe('gradient accumulation', () => {
  test('two micro-batches of 4 rows give exactly the step of one batch of 8 (AdamW, clipping)', async () => {
    const build = (rows: number) => {
      const graph = new Graph();
      const x = graph.input('x', 'float64', [rows, 5]);
      const y = graph.input('y', 'float64', [rows, 3]);
      const w = graph.input('W', 'float64', [5, 3]);
      const b = graph.input('b', 'float64', [3]);
      const r = T.sub(T.add(T.matmul(x, w), b), y);
      const lossSum = T.reduceSum(T.mul(r, r));
      const count = T.constant(graph, 'float64', [], [rows * 3]);
      return { graph, w, b, lossSum, count, sq: T.reduceSum(T.abs(r)) };
    };
    const opts = { optimizer: { kind: 'adamw' as const, beta1: 0.8, beta2: 0.99, eps: 1e-6 }, clipNorm: 0.5 };
    const full = build(8);
    const one = await TrainStep.compile({
      graph: full.graph,
      lossSum: full.lossSum,
      count: full.count,
      trainable: [full.w, full.b],
      metrics: { abs: full.sq },
      ...opts,
    });
    const half = build(4);
    const two = await TrainStep.compile({
      graph: half.graph,
      lossSum: half.lossSum,
      count: half.count,
      trainable: [half.w, half.b],
      metrics: { abs: half.sq },
      microBatches: 2,
      ...opts,
    });
    const init = () =>
      new ParameterStore([
        ['W', { dtype: 'float64', shape: [5, 3], data: Float64Array.from(fx.W0) }],
        ['b', { dtype: 'float64', shape: [3], data: Float64Array.from(fx.b0) }],
      ]);
    const rows = (from: number, to: number) => ({
      x: {
        dtype: 'float64' as const,
        shape: [to - from, 5],
        data: Float64Array.from(fx.X.slice(from * 5, to * 5)),
      },
      y: {
        dtype: 'float64' as const,
        shape: [to - from, 3],
        data: Float64Array.from(fx.Y.slice(from * 3, to * 3)),
      },
    });
    const a = init();
    const b = init();
    one.initState(a);
    two.initState(b);
    for (let i = 0; i < 3; i++) {
      const ra = await one.run(a, [{ data: rows(0, 8), lr: [0.01] }], i);
      const rb = await two.run(b, [{ micro: [rows(0, 4), rows(4, 8)], lr: [0.01] }], i);
      assert.ok(Math.abs(ra.losses[0] - rb.losses[0]) < 1e-12 * Math.abs(ra.losses[0]));
      assert.ok(Math.abs(ra.gradNorms[0] - rb.gradNorms[0]) < 1e-12 * ra.gradNorms[0]);
      assert.ok(
        Math.abs(ra.metrics.abs[0] - rb.metrics.abs[0]) < 1e-12 * ra.metrics.abs[0],
        'metrics add up',
      );
    }
    assert.ok(maxRelDiff(a.get('W').data as Float64Array, b.get('W').data as Float64Array) < 1e-12);
    assert.ok(maxRelDiff(a.get('b').data as Float64Array, b.get('b').data as Float64Array) < 1e-12);
    await one.release();
    await two.release();
  });

  test('a non-finite loss leaves the store untouched', async () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [2]);
    const w = graph.input('w', 'float32', [2]);
    const step = await TrainStep.compile({
      graph,
      loss: T.reduceSum(T.log(T.mul(x, w))),
      trainable: [w],
      optimizer: { kind: 'adamw' },
    });
    const store = new ParameterStore([
      ['w', { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) }],
    ]);
    step.initState(store);
    const r = await step.run(
      store,
      [{ data: { x: { dtype: 'float32', shape: [2], data: Float32Array.from([-1, 1]) } }, lr: [0.1] }],
      0,
    );
    assert.equal(r.committed, false);
    assert.ok(Number.isNaN(r.losses[0]));
    assert.deepEqual(Array.from(store.get('w').data as Float32Array), [1, 2]);
    await step.release();
  });
});
