// With dropout on, a batch of 32 run as 4 micro-batches of 8 trains exactly as 1 × 32: a row's dropout mask
// depends on its row in the whole batch, not in its micro-batch (issue 9 #1).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gpt2Model } from '../../src/models/gpt2.ts';
import { ExampleBatcher } from '../../src/train/batcher.ts';
import { causalLmObjective } from '../../src/train/objective.ts';
import { type TrainResult, train } from '../../src/train/trainer.ts';
import { SEQ, sequences, tinyGpt2 } from './helpers.ts';

const LR = 0.5;

async function oneStep(dir: string, micro: number, dropout: number, lr = LR): Promise<TrainResult> {
  const model = gpt2Model(tinyGpt2(dropout));
  const source = new ExampleBatcher(sequences(256, 1), { batchSize: micro, seqLen: SEQ, seed: 5, padId: 0 });
  return train({
    checkpointDir: join(dir, 'ckpt'),
    logDir: join(dir, 'logs'),
    objective: causalLmObjective(model, micro, SEQ),
    train: source,
    strategy: { kind: 'full', weightDecay: 0 },
    optimizer: { kind: 'sgd', momentum: 0 },
    learningRate: lr,
    schedule: { kind: 'constant' },
    clipNorm: null,
    maxSteps: 1,
    microBatches: 32 / micro,
    seed: 3,
    fingerprint: 'micro',
    quiet: true,
    tensorboard: false,
  });
}

test('dropout on: 4 micro-batches of 8 give the loss and gradients of one batch of 32', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tlab-micro-'));
  try {
    const whole = await oneStep(join(root, 'whole'), 32, 0.3);
    const split = await oneStep(join(root, 'split'), 8, 0.3);
    const plain = await oneStep(join(root, 'plain'), 32, 0);
    const initial = await oneStep(join(root, 'initial'), 32, 0.3, 0); // lr 0: the initial weights
    assert.ok(Math.abs(whole.losses[0] - plain.losses[0]) > 1e-3, 'dropout is on (it changes the loss)');
    assert.ok(
      Math.abs(split.losses[0] - whole.losses[0]) <= 1e-6 * Math.abs(whole.losses[0]),
      `loss ${split.losses[0]} vs ${whole.losses[0]}`,
    );
    // One SGD step without momentum: (initial − updated) / lr is the gradient.
    let worst = 0;
    for (const [name, w1] of whole.store.entries()) {
      const a = w1.data as Float32Array;
      const b = split.store.get(name).data as Float32Array;
      const init = initial.store.get(name).data as Float32Array;
      let scale = 1e-6;
      for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs((init[i] - a[i]) / LR));
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / LR / scale);
    }
    assert.ok(worst < 1e-4, `largest gradient difference ${worst} (relative to the largest gradient)`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
