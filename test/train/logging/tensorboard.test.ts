import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { DT_FLOAT, encodeEvent } from '../../../src/train/logging/event-proto.ts';
import {
  readTensorBoardFile,
  readTensorBoardScalars,
} from '../../../src/train/logging/tensorboard-reader.ts';
import { histogramOf, TensorBoardWriter } from '../../../src/train/logging/tensorboard-writer.ts';
import { frameRecord, readRecords } from '../../../src/train/logging/tfrecord.ts';

const FIXTURES = new URL('../../fixtures/train/', import.meta.url).pathname;
/** Written by PyTorch's torch.utils.tensorboard.SummaryWriter: 100 × add_scalar("strict/foo", U[1,2), 5·i). */
const PYTORCH_FILE = join(FIXTURES, 'tfevents', 'events.out.tfevents.1622543341.janoshs-mbp.lan.86862.0');
const PYTHON = '/usr/bin/python3';
const tempDir = () => mkdtempSync(join(tmpdir(), 'tlab-tb-'));
const fixedClock = (t: number) => () => t;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const doubleLE = (x: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, x, true);
  return hex(b);
};

test('the first record is Event{wall_time, file_version "brain.Event:2"}, byte for byte', () => {
  const writer = new TensorBoardWriter(tempDir(), { now: fixedClock(1700000000.25) });
  writer.close();
  const bytes = new Uint8Array(readFileSync(writer.path));
  const { records } = readRecords(bytes, writer.path);
  assert.equal(records.length, 1);
  assert.equal(
    hex(records[0]),
    `09${doubleLE(1700000000.25)}1a0d${hex(new TextEncoder().encode('brain.Event:2'))}`,
  );
  assert.match(basename(writer.path), /^events\.out\.tfevents\.1700000000\.[\w.-]+\.\d+\.\d+$/);
});

test('a scalar event encodes as in the worked example (tag "loss", 0.5, step 5)', () => {
  const event = encodeEvent({ wallTime: 1, step: 5, summary: [{ tag: 'loss', simpleValue: 0.5 }] });
  // Value = 0a 04 "loss" 15 <float32 0.5>; Summary = 0a 0b Value; Event = 09 <double> 10 05 2a 0d Summary.
  assert.equal(hex(event), `09${doubleLE(1)}10052a0d0a0b0a046c6f7373150000003f`);
  assert.equal(event.length, 26);
});

test('re-framing the records of a PyTorch-written file reproduces it byte for byte (CRCs and framing)', () => {
  const original = new Uint8Array(readFileSync(PYTORCH_FILE));
  const { records, tornTailOffset } = readRecords(original, PYTORCH_FILE);
  assert.equal(tornTailOffset, undefined);
  assert.equal(records.length, 101);
  const reframed = Buffer.concat(records.map((record) => frameRecord(record)));
  assert.ok(reframed.equals(Buffer.from(original)));
});

test('reads the scalars of the PyTorch-written file', () => {
  const points = readTensorBoardScalars(PYTORCH_FILE);
  assert.equal(points.length, 100);
  assert.ok(points.every((p) => p.tag === 'strict/foo' && p.value >= 1 && p.value < 2));
  assert.deepEqual(
    points.map((p) => p.step),
    Array.from({ length: 100 }, (_, i) => 5 * i),
  );
  assert.ok(points.every((p, i) => i === 0 || p.wallTime >= points[i - 1].wallTime));
  assert.equal(points[0].value, 1.4962565898895264);
  assert.equal(points[0].wallTime, 1622543341.758558);
  assert.equal(points[99].value, 1.212090253829956);
  assert.equal(readTensorBoardFile(PYTORCH_FILE).events[0].fileVersion, 'brain.Event:2');
  // A folder is read as all its event files.
  assert.equal(readTensorBoardScalars(join(FIXTURES, 'tfevents')).length, 100);
});

test('scalars, texts and histograms round-trip through our writer and reader', () => {
  const dir = tempDir();
  const writer = new TensorBoardWriter(dir, { now: fixedClock(1700000000) });
  writer.addScalar('train/loss', 2.5, 1);
  writer.addScalars({ 'train/loss': 1.25, 'train/lr': 3e-4 }, 2, 1700000001.5);
  writer.addScalar('train/loss', Number.NaN, 3);
  writer.addText('config', '# run\nlr = 3e-4', 0);
  writer.addHistogram('weights', [0, 1, 1, 2, 4, Number.NaN], 2, { bins: 2 });
  writer.close();
  assert.deepEqual(readTensorBoardScalars(dir).slice(0, 3), [
    { tag: 'train/loss', step: 1, value: 2.5, wallTime: 1700000000 },
    { tag: 'train/loss', step: 2, value: 1.25, wallTime: 1700000001.5 },
    { tag: 'train/lr', step: 2, value: Math.fround(3e-4), wallTime: 1700000001.5 },
  ]);
  assert.ok(Number.isNaN(readTensorBoardScalars(dir)[3].value));
  const events = readTensorBoardFile(writer.path).events;
  const text = events[4].summary![0];
  assert.equal(text.pluginName, 'text');
  assert.equal(new TextDecoder().decode(text.tensor!.stringVal[0]), '# run\nlr = 3e-4');
  assert.deepEqual(events[5].summary![0].histo, {
    min: 0,
    max: 4,
    num: 5,
    sum: 8,
    sumSquares: 22,
    bucketLimit: [2, 4],
    bucket: [3, 2],
  });
});

test('histogramOf: equal-width buckets, constant input, no finite values', () => {
  assert.deepEqual(histogramOf([1, 2, 3, 4], 3).bucket, [1, 1, 2]);
  assert.deepEqual(histogramOf([7, 7], 10), {
    min: 7,
    max: 7,
    num: 2,
    sum: 14,
    sumSquares: 98,
    bucketLimit: [7],
    bucket: [2],
  });
  assert.equal(histogramOf([Number.NaN], 4).num, 0);
});

test('TF2-style scalars (rank-0 float tensors, plugin "scalars" on the first value only) are read', () => {
  const dir = tempDir();
  const tensor = (x: number) => ({ dtype: DT_FLOAT, shape: [], floatVal: [x], doubleVal: [], stringVal: [] });
  const events = [
    encodeEvent({ wallTime: 1, step: 0, fileVersion: 'brain.Event:2' }),
    encodeEvent({
      wallTime: 2,
      step: 1,
      summary: [{ tag: 'acc', tensor: tensor(0.5), pluginName: 'scalars' }],
    }),
    encodeEvent({ wallTime: 3, step: 2, summary: [{ tag: 'acc', tensor: tensor(0.75) }] }),
    encodeEvent({ wallTime: 4, step: 2, summary: [{ tag: 'other', tensor: tensor(9) }] }),
  ];
  const path = join(dir, 'events.out.tfevents.1.host.v2');
  writeFileSync(path, Buffer.concat(events.map((e) => frameRecord(e))));
  assert.deepEqual(readTensorBoardScalars(path), [
    { tag: 'acc', step: 1, value: 0.5, wallTime: 2 },
    { tag: 'acc', step: 2, value: 0.75, wallTime: 3 },
  ]);
});

test('a torn last record (crash mid-write) is skipped; a flipped byte is an error naming file and offset', () => {
  const dir = tempDir();
  const writer = new TensorBoardWriter(dir, { now: fixedClock(10) });
  writer.addScalar('x', 1, 1);
  writer.addScalar('x', 2, 2);
  writer.close();
  const bytes = readFileSync(writer.path);
  const torn = join(dir, 'events.out.tfevents.torn');
  writeFileSync(torn, bytes.subarray(0, bytes.length - 5));
  const file = readTensorBoardFile(torn);
  assert.equal(file.events.length, 2);
  assert.ok(file.tornTailOffset !== undefined && file.tornTailOffset > 0);
  assert.deepEqual(
    readTensorBoardScalars(torn).map((p) => p.value),
    [1],
  );

  const corrupt = Buffer.from(bytes);
  corrupt[corrupt.length - 10] ^= 0xff;
  const bad = join(dir, 'events.out.tfevents.bad');
  writeFileSync(bad, corrupt);
  assert.throws(
    () => readTensorBoardFile(bad),
    /events\.out\.tfevents\.bad: record at byte \d+: data checksum mismatch/,
  );
  assert.throws(() => readTensorBoardScalars(join(dir, 'nope')), /no such TensorBoard event file or folder/);
});

test('with a flush interval, events reach the file on the interval or at close; writers never share a file', () => {
  let now = 100;
  const dir = tempDir();
  const writer = new TensorBoardWriter(dir, { flushIntervalSeconds: 30, now: () => now });
  const size = () => statSync(writer.path).size;
  const afterHeader = size();
  writer.addScalar('x', 1, 1);
  assert.equal(size(), afterHeader);
  now += 31;
  writer.addScalar('x', 2, 2);
  assert.ok(size() > afterHeader);
  writer.addScalar('x', 3, 3);
  const before = size();
  const second = new TensorBoardWriter(dir, { now: () => now });
  second.close();
  writer.close();
  assert.ok(size() > before);
  assert.notEqual(second.path, writer.path);
  assert.equal(readdirSync(dir).length, 2);
  assert.throws(() => writer.addScalar('x', 4, 4), /writer is closed/);
});

function runPythonReader(path: string): {
  file_version: string;
  records: number;
  scalars: { tag: string; step: number; value: number; wall_time: number }[];
  texts: { tag: string; step: number; text: string }[];
  histograms: { tag: string; step: number; bucket: number[]; bucket_limit: number[]; sum: number }[];
} {
  const result = spawnSync(PYTHON, [join(FIXTURES, 'read_tfevents.py'), path], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

const noPython = existsSync(PYTHON) ? false : `${PYTHON} not found: the independent Python reader is not run`;

test('an independent Python reader (stdlib only) reads what our writer wrote', { skip: noPython }, () => {
  const dir = tempDir();
  const writer = new TensorBoardWriter(dir, { now: fixedClock(1700000000.5) });
  writer.addScalars({ 'train/loss': 2.75, 'train/acc': 0.125 }, 7);
  writer.addScalar('eval/loss', 3.5, 8, 1700000009);
  writer.addText('notes', 'héllo ✓', 9);
  writer.addHistogram('w', [1, 2, 3, 10], 10, { bins: 3 });
  writer.close();
  const py = runPythonReader(writer.path);
  assert.equal(py.file_version, 'brain.Event:2');
  assert.equal(py.records, 5);
  assert.deepEqual(py.scalars, [
    { tag: 'train/loss', step: 7, wall_time: 1700000000.5, value: 2.75 },
    { tag: 'train/acc', step: 7, wall_time: 1700000000.5, value: 0.125 },
    { tag: 'eval/loss', step: 8, wall_time: 1700000009, value: 3.5 },
  ]);
  assert.deepEqual(py.texts, [{ tag: 'notes', step: 9, wall_time: 1700000000.5, text: 'héllo ✓' }]);
  assert.deepEqual(py.histograms[0].bucket, [3, 0, 1]);
  assert.deepEqual(py.histograms[0].bucket_limit, [4, 7, 10]);
  assert.equal(py.histograms[0].sum, 16);
});

test('the Python reader and ours agree on the PyTorch-written file', { skip: noPython }, () => {
  const py = runPythonReader(PYTORCH_FILE);
  const ours = readTensorBoardScalars(PYTORCH_FILE);
  assert.deepEqual(
    py.scalars.map((p) => ({ tag: p.tag, step: p.step, value: p.value, wallTime: p.wall_time })),
    ours,
  );
});
