import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readJsonl } from '../../../src/train/logging/jsonl-log.ts';
import {
  readTensorBoardFile,
  readTensorBoardScalars,
} from '../../../src/train/logging/tensorboard-reader.ts';
import { METRICS_FILE, TrainingLogs } from '../../../src/train/logging/training-logs.ts';

test('one call writes a metrics.jsonl line and TensorBoard scalars "<split>/<metric>"', () => {
  const logDir = join(mkdtempSync(join(tmpdir(), 'tlab-logs-')), 'logs', 'run-a');
  const clock = { now: () => 1700000000 };
  const logs = new TrainingLogs(logDir, { jsonl: clock, tensorboardOptions: clock });
  logs.log(10, 'train', { loss: 1.5, tokens_per_s: 2048 });
  logs.log(10, 'eval', { loss: 1.75, accuracy: 0.5, best_checkpoint: 'step-10' });
  logs.logText(0, 'config', 'lr: 3e-4');
  logs.close();

  assert.deepEqual(readJsonl(join(logDir, METRICS_FILE)).records, [
    { step: 10, time: 1700000000, split: 'train', loss: 1.5, tokens_per_s: 2048 },
    { step: 10, time: 1700000000, split: 'eval', loss: 1.75, accuracy: 0.5, best_checkpoint: 'step-10' },
  ]);
  assert.deepEqual(
    readTensorBoardScalars(logDir).map((p) => [p.tag, p.step, p.value]),
    [
      ['train/loss', 10, 1.5],
      ['train/tokens_per_s', 10, 2048],
      ['eval/loss', 10, 1.75],
      ['eval/accuracy', 10, 0.5],
    ],
  );
  const eventFile = readdirSync(logDir).find((name) => name.includes('tfevents'))!;
  assert.equal(readTensorBoardFile(join(logDir, eventFile)).events.at(-1)?.summary?.[0].pluginName, 'text');
});

test('TensorBoard files can be turned off', () => {
  const logDir = mkdtempSync(join(tmpdir(), 'tlab-logs-'));
  const logs = new TrainingLogs(logDir, { tensorboard: false });
  logs.log(1, 'train', { loss: 1 });
  logs.close();
  assert.deepEqual(readdirSync(logDir), [METRICS_FILE]);
});
