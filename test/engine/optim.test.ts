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
