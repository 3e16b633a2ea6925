import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsonlLogger, readJsonl } from '../../../src/train/logging/jsonl-log.ts';

const tempFile = () => join(mkdtempSync(join(tmpdir(), 'tlab-jsonl-')), 'logs', 'run-1', 'metrics.jsonl');

test('appends one {step, time, split, ...metrics} object per line', () => {
  const path = tempFile();
  const logger = new JsonlLogger(path, { now: () => 1700000000.12345 });
  logger.log(1, 'train', { loss: 2.5, lr: 0.001 });
  logger.log(1, 'eval', { accuracy: 0.5, note: 'ok', best: true });
  logger.close();
  assert.equal(
    readFileSync(path, 'utf8'),
    '{"step":1,"time":1700000000.123,"split":"train","loss":2.5,"lr":0.001}\n' +
      '{"step":1,"time":1700000000.123,"split":"eval","accuracy":0.5,"note":"ok","best":true}\n',
  );
  assert.deepEqual(readJsonl(path).records[1], {
    step: 1,
    time: 1700000000.123,
    split: 'eval',
    accuracy: 0.5,
    note: 'ok',
    best: true,
  });
  assert.throws(() => logger.log(2, 'train', {}), /metrics log is closed/);
});

test('non-finite metrics are kept as strings (JSON has no NaN), not silently turned into null', () => {
  const path = tempFile();
  const logger = new JsonlLogger(path, { fsync: 'every-line' });
  logger.log(3, 'train', { loss: Number.NaN, grad_norm: Number.POSITIVE_INFINITY });
  logger.close();
  const [record] = readJsonl(path).records;
  assert.equal(record.loss, 'NaN');
  assert.equal(record.grad_norm, 'Infinity');
});

test('a torn last line is skipped by the reader and cut off (with a warning) when the log is reopened', () => {
  const path = tempFile();
  const first = new JsonlLogger(path);
  first.log(1, 'train', { loss: 3 });
  first.log(2, 'train', { loss: 2 });
  first.close();
  const clean = readFileSync(path, 'utf8');
  appendFileSync(path, '{"step":3,"time":1,"split":"tr');
  const torn = readJsonl(path);
  assert.equal(torn.records.length, 2);
  assert.equal(torn.tornTailOffset, Buffer.byteLength(clean));

  const warnings: string[] = [];
  const resumed = new JsonlLogger(path, { onWarning: (m) => warnings.push(m) });
  resumed.log(3, 'train', { loss: 1 });
  resumed.close();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /metrics\.jsonl: cut off an incomplete last line at byte \d+/);
  assert.deepEqual(
    readJsonl(path).records.map((r) => r.step),
    [1, 2, 3],
  );
});

test('a complete last object without its newline is kept and terminated', () => {
  const path = tempFile();
  new JsonlLogger(path).close();
  writeFileSync(path, '{"step":1,"time":0,"split":"train"}');
  const logger = new JsonlLogger(path);
  logger.log(2, 'train', {});
  logger.close();
  assert.deepEqual(
    readJsonl(path).records.map((r) => r.step),
    [1, 2],
  );
});

test('resumeFromStep drops the records a resumed run will log again', () => {
  const path = tempFile();
  const logger = new JsonlLogger(path);
  for (let step = 1; step <= 5; step++) logger.log(step, 'train', { loss: 1 / step });
  logger.close();
  const warnings: string[] = [];
  const resumed = new JsonlLogger(path, { resumeFromStep: 3, onWarning: (m) => warnings.push(m) });
  resumed.log(4, 'train', { loss: 0.2 });
  resumed.close();
  assert.deepEqual(
    readJsonl(path).records.map((r) => [r.step, r.loss]),
    [
      [1, 1],
      [2, 0.5],
      [3, 1 / 3],
      [4, 0.2],
    ],
  );
  assert.match(warnings[0], /dropped 2 records after step 3/);
});

test('a line that does not parse before the end is an error naming the file and line', () => {
  const path = tempFile();
  new JsonlLogger(path).close();
  writeFileSync(path, '{"step":1}\n{"step":2,\n{"step":3}\n');
  assert.throws(() => readJsonl(path), /metrics\.jsonl: line 2 is not valid JSON/);
  assert.throws(() => new JsonlLogger(path), /line 2 is not valid JSON/);
  assert.throws(() => readJsonl(join(path, 'nope')), /file not found/);
});
