// The NaN guard checks the updated weights in the graph: a learning rate that overflows the weights while the
// loss and gradient are finite is not applied, in every way a step runs, and never checkpointed (issue 9 #2).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { ParameterStore } from '../../src/engine/runtime/param-store.ts';
import { TrainStep } from '../../src/engine/runtime/train-step.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { init } from '../../src/nn/module.ts';
import { loadLatestCheckpoint } from '../../src/train/checkpoint.ts';
import type { Objective } from '../../src/train/objective.ts';
import { train } from '../../src/train/trainer.ts';

const N = 4;
const x: HostTensor = { dtype: 'float32', shape: [N], data: new Float32Array(N).fill(100) };
const w0 = () => ({ dtype: 'float32' as const, shape: [N], data: Float32Array.of(0.5, -0.25, 0.125, 1) });

/**
 * loss = Σ w·x / N with x = 100: the gradient is 25 whatever w is, so one SGD step with lr 1e38 moves w by 2.5e39,
 * beyond float32's 3.4e38: the weights overflow while loss and gradient are finite.
 */
async function compile(kind: 'single' | 'loop' | 'accumulate') {
  const graph = new Graph();
  const w = graph.input('w', 'float32', [N]);
  const xs = graph.input('x', 'float32', [N]);
  const lossSum = T.reduceSum(T.mul(w, xs));
  const count = T.reduceSum(T.div(xs, xs)); // N, from the data only
  return TrainStep.compile({
    graph,
    lossSum,
    count,
    trainable: [w],
    optimizer: { kind: 'sgd', momentum: 0, weightDecay: 0 },
    stepsPerRun: kind === 'loop' ? 2 : 1,
    microBatches: kind === 'accumulate' ? 2 : 1,
  });
}

test('TrainStep: finite loss and gradient but overflowing weights: not committed (single step, Loop, accumulation)', async () => {
  for (const kind of ['single', 'loop', 'accumulate'] as const) {
    const step = await compile(kind);
    try {
      const feed = (lr: number) =>
        kind === 'accumulate' ? { micro: [{ x }, { x }], lr: [lr] } : { data: { x }, lr: [lr] };
      const store = new ParameterStore([['w', w0()]]);
      step.initState(store);
      const steps = (lr: number) => (kind === 'loop' ? [feed(lr), feed(lr)] : [feed(lr)]);
      const ok = await step.run(store, steps(1e-3), 0);
      assert.ok(ok.committed, `${kind}: a sane step is applied`);
      assert.deepEqual(ok.nonFinite, kind === 'loop' ? [0, 0] : [0]);
      const before = Array.from(store.get('w').data as Float32Array);
      const r = await step.run(store, steps(1e38), 1);
      // The first step's loss and norm come from finite weights (in a Loop the second step sees the overflow).
      assert.ok(
        Number.isFinite(r.losses[0]) && Number.isFinite(r.gradNorms[0]),
        `${kind}: loss and norm finite`,
      );
      assert.ok(Math.abs(r.gradNorms[0] - 50) < 1e-3, `${kind}: |grad| = 25·√4 = 50`);
      assert.equal(r.nonFinite[0], N, `${kind}: every weight overflowed`);
      assert.equal(r.committed, false, `${kind}: not applied`);
      assert.deepEqual(
        Array.from(store.get('w').data as Float32Array),
        before,
        `${kind}: the store is unchanged`,
      );
    } finally {
      await step.release();
    }
  }
});

test('trainer: an update that overflows the weights stops training with a clear error and writes no checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-guard-'));
  const objective: Objective = {
    batchShape: { batch: 1, seqLen: N },
    build(graph, pb) {
      const w = pb.param('w', [N], init.ones);
      const xs = graph.input('x', 'float32', [N]);
      return { lossSum: T.reduceSum(T.mul(w, xs)), count: T.reduceSum(T.div(xs, xs)), metrics: {} };
    },
  };
  try {
    await assert.rejects(
      train({
        checkpointDir: join(dir, 'ckpt'),
        logDir: join(dir, 'logs'),
        objective,
        train: { batch: () => ({ x }) },
        strategy: { kind: 'full', weightDecay: 0 },
        optimizer: { kind: 'sgd', momentum: 0 },
        learningRate: 1e38,
        schedule: { kind: 'constant' },
        clipNorm: null,
        maxSteps: 3,
        saveEvery: 1,
        seed: 0,
        fingerprint: 'guard',
        quiet: true,
        tensorboard: false,
      }),
      (e: Error & { details?: string }) => {
        assert.match(
          e.message,
          /^step 1: the update made 4 weight or optimizer value\(s\) non-finite \(loss 100, gradient norm 50: the learning rate is too large\); training stopped before applying it$/,
        );
        assert.equal(e.details, 'no checkpoint was written yet');
        return true;
      },
    );
    assert.equal(loadLatestCheckpoint(join(dir, 'ckpt')), null, 'no checkpoint of overflowed weights');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
