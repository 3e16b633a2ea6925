import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadLatestCheckpoint } from '../../src/train/checkpoint.ts';
import { type TrainerOptions, train } from '../../src/train/trainer.ts';
import { setup } from './helpers.ts';

function options(dir: string, overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  const { objective, train: source, evalSource } = setup(16, 0.1);
  return {
    checkpointDir: join(dir, 'checkpoints'),
    logDir: join(dir, 'logs'),
    objective,
    train: source,
    eval: { source: evalSource, batches: 4 },
    strategy: { kind: 'full', weightDecay: 0.01 },
    optimizer: { kind: 'adamw' },
    learningRate: 3e-3,
    schedule: { kind: 'cosine', warmupSteps: 10, totalSteps: 120, minRatio: 0.1 },
    clipNorm: 1,
    maxSteps: 120,
    evalEvery: 40,
    saveEvery: 20,
    seed: 3,
    fingerprint: 'test-v1',
    quiet: true,
    ...overrides,
  };
}

const readLog = (dir: string) =>
  readFileSync(join(dir, 'logs', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .map(({ time: _t, ...rest }) => rest);

describe('trainer', () => {
  test('pre-training a 2-layer GPT-2 with dropout beats chance by a wide margin (eval accuracy >= 0.9 vs 0.06)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tlab-train-'));
    const r = await train(
      options(dir, {
        maxSteps: 300,
        evalEvery: 100,
        schedule: { kind: 'cosine', warmupSteps: 10, totalSteps: 300, minRatio: 0.1 },
      }),
    );
    assert.equal(r.step, 300);
    const last = r.evals[r.evals.length - 1];
    assert.ok(last.accuracy >= 0.9, `eval accuracy ${last.accuracy}`);
    assert.ok(r.evals[0].loss > last.loss * 3, 'eval loss fell');
    assert.ok(
      readdirSync(join(dir, 'logs')).some((f) => f.startsWith('events.out.tfevents.')),
      'TensorBoard events written',
    );
  });

  test('killed mid-training and resumed, the loss curve continues identically to an uninterrupted run', async () => {
    const a = mkdtempSync(join(tmpdir(), 'tlab-resume-a-'));
    const b = mkdtempSync(join(tmpdir(), 'tlab-resume-b-'));
    const full = await train(options(a, { maxSteps: 60, evalEvery: 30 }));
    // Session 1 stops at step 47 (as if killed); the last checkpoint is step 40, so steps 41–47 are redone.
    await train(options(b, { maxSteps: 60, evalEvery: 30, stopAfter: 47 }));
    assert.equal(loadLatestCheckpoint(join(b, 'checkpoints'))!.state.step, 40);
    const resumed = await train(options(b, { maxSteps: 60, evalEvery: 30 }));
    assert.equal(resumed.resumedFrom, 40);
    assert.deepEqual(resumed.losses, full.losses.slice(40), 'the same losses, bit for bit');
    assert.deepEqual(readLog(b), readLog(a), 'the JSONL log (without timestamps) is the same');
    for (const [name, t] of full.store.entries()) {
      assert.deepEqual(
        Array.from(resumed.store.get(name).data as Float32Array),
        Array.from(t.data as Float32Array),
        name,
      );
    }
  });

  test('a diverging run stops before applying a non-finite step and keeps the last good checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tlab-nan-'));
    const lr = 1e38; // overflows within a few steps
    await assert.rejects(
      train(
        options(dir, {
          learningRate: lr,
          schedule: { kind: 'constant' },
          clipNorm: null,
          optimizer: { kind: 'sgd' },
          saveEvery: 1,
          evalEvery: 0,
        }),
      ),
      (e: Error) => {
        assert.match(
          e.message,
          /^step \d+: (loss (NaN|Infinity|-Infinity), gradient norm .*|the update made \d+ weight or optimizer value\(s\) non-finite .*); training stopped before applying it$/,
        );
        assert.match((e as Error & { details: string }).details, /the last good checkpoint is .*step-\d+/);
        return true;
      },
    );
    const ckpt = loadLatestCheckpoint(join(dir, 'checkpoints'))!;
    for (const t of ckpt.params.values())
      for (const v of t.data as Float32Array) assert.ok(Number.isFinite(v));
  });

  test('resuming with different settings is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tlab-fp-'));
    await train(options(dir, { maxSteps: 20, evalEvery: 0 }));
    await assert.rejects(
      train(options(dir, { maxSteps: 40, fingerprint: 'other' })),
      /made with other settings/,
    );
    await assert.rejects(
      train(options(dir, { maxSteps: 40, resume: 'never' })),
      /holds checkpoints of an earlier run/,
    );
  });
});
