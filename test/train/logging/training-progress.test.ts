import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrainingProgress } from '../../../src/train/logging/training-progress.ts';

/** A non-TTY stream that records what is written. */
function captureStream(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

test('shows step/total, loss, learning rate, tokens/s and an ETA', () => {
  const { stream, lines } = captureStream();
  let now = 0;
  const progress = new TrainingProgress({ totalSteps: 100, stream, intervalSeconds: 0, now: () => now });
  now = 0.5;
  progress.step({ loss: 2.345678, learningRate: 3e-4, tokens: 1024 });
  now = 1;
  progress.step({ loss: 2.1, learningRate: 3e-4, tokens: 1024 });
  assert.equal(progress.tokensPerSecond, 2048);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^train 1% 1\/100 .* step\/s eta \S+ loss 2\.3457 lr 3\.0e-4 2\.0k tok\/s\n$/);
  assert.match(lines[1], /^train 2% 2\/100 .*loss 2\.1000 lr 3\.0e-4 2\.0k tok\/s\n$/);
  progress.finish();
  assert.equal(lines.length, 2, 'finish() does not repeat the last line in a log');
  progress.step({ loss: 2.05, learningRate: 3e-4, tokens: 1024 });
  progress.finish();
  assert.match(lines[lines.length - 1], /3\/100 .*loss 2\.0500/);
});

test('tokens/s averages over a sliding window; a resumed run counts from its start step', () => {
  const { stream, lines } = captureStream();
  let now = 0;
  const progress = new TrainingProgress({
    totalSteps: 1000,
    startStep: 150,
    windowSteps: 2,
    stream,
    intervalSeconds: 0,
    now: () => now,
  });
  // A slow first step (compilation), then steady 100 tokens per 0.1 s.
  now = 10;
  progress.step({ tokens: 100 });
  now = 10.1;
  progress.step({ tokens: 100 });
  now = 10.2;
  progress.step({ tokens: 100, steps: 2 });
  assert.ok(Math.abs(progress.tokensPerSecond - 1000) < 1e-6);
  assert.match(lines.at(-1)!, / 154\/1000 /);
  assert.match(lines.at(-1)!, /1\.0k tok\/s/);
});

test('silent progress writes nothing', () => {
  const { stream, lines } = captureStream();
  const progress = new TrainingProgress({ totalSteps: 3, stream, silent: true });
  progress.step({ loss: 1 });
  progress.finish();
  assert.equal(lines.length, 0);
});
