import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EvalGrid, GridCell } from '../../src/eval/grid/schema.ts';
import {
  cellKey,
  computeTransfer,
  type SampleScores,
  type Statistic,
  type TransferCell,
} from '../../src/eval/transfer.ts';
import { loadTransferInput, parseEvalGrid, readGraderLogScores } from '../../src/eval/transfer-input.ts';
import { TRANSFER_CSV_COLUMNS, transferCsv, writeTransferOutputs } from '../../src/eval/transfer-output.ts';
import { parseCsv } from '../../src/util/csv.ts';
import { TlabError } from '../../src/util/errors.ts';

// The grid and the expected analysis come from an independent numpy implementation with the same seeded draws:
// test/fixtures/eval/transfer/make_transfer.py.
const FIXTURE = new URL('../fixtures/eval/transfer/', import.meta.url).pathname;
const GRID = join(FIXTURE, 'grid');
interface ExpectedStat {
  value: number | null;
  low: number | null;
  high: number | null;
  undefined_resamples?: number;
}
interface ExpectedCell {
  model: string;
  task: string;
  score: ExpectedStat | null;
  delta_vs_base?: ExpectedStat | null;
  relative_gain?: ExpectedStat | null;
  transfer_index?: ExpectedStat | null;
  in_task_model: string | null;
  delta_vs_in_task: ExpectedStat | null;
}
const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as {
  settings: { floor: number; min_gain: number; resamples: number; level: number; seed: number };
  cells: ExpectedCell[];
};
const settings = {
  floor: expected.settings.floor,
  minGain: expected.settings.min_gain,
  resamples: expected.settings.resamples,
  level: expected.settings.level,
  seed: expected.settings.seed,
};

function close(a: number | null, b: number | null, what: string): void {
  if (a === null || b === null) {
    assert.equal(a, b, what);
    return;
  }
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

function sameStat(got: Statistic, want: ExpectedStat | null | undefined, what: string): void {
  if (want === null || want === undefined) {
    assert.equal(got.value, null, `${what} should be undefined`);
    assert.ok(got.reason && got.reason.length > 0, `${what} says why it is undefined`);
    return;
  }
  close(got.value, want.value, `${what} value`);
  close(got.low, want.low, `${what} low`);
  close(got.high, want.high, `${what} high`);
  if (want.undefined_resamples !== undefined)
    assert.equal(got.undefined_resamples, want.undefined_resamples, `${what} undefined resamples`);
}

test('transfer: matrix, deltas, relative gains, indices and paired bootstrap CIs match the numpy reference', () => {
  const input = loadTransferInput(GRID);
  const result = computeTransfer(input, settings);
  assert.equal(result.cells.length, expected.cells.length);
  for (const want of expected.cells) {
    const got = result.cells.find((c) => c.model === want.model && c.task === want.task)!;
    const at = `${want.model}/${want.task}`;
    sameStat(got.score, want.score, `${at} score`);
    if ('delta_vs_base' in want) {
      sameStat(got.delta_vs_base, want.delta_vs_base, `${at} delta vs base`);
      sameStat(got.relative_gain, want.relative_gain, `${at} relative gain`);
      sameStat(got.transfer_index, want.transfer_index, `${at} index`);
    } else {
      assert.equal(got.delta_vs_base.value, null);
      assert.equal(got.transfer_index.reason, 'base model (no train task)');
    }
    assert.equal(got.in_task_model, want.in_task_model, `${at} in-task model`);
    sameStat(got.delta_vs_in_task, want.delta_vs_in_task, `${at} delta vs in-task`);
  }
});

test('transfer: excluded cells carry their reason; the undefined index is explained, never huge', () => {
  const result = computeTransfer(loadTransferInput(GRID), settings);
  const cell = (m: string, t: string) => result.cells.find((c) => c.model === m && c.task === t)!;
  const skipped = cell('ft-A-lora', 'C');
  assert.equal(skipped.status, 'skipped');
  assert.match(skipped.reason!, /text-only model/);
  assert.equal(skipped.score.value, null);
  const failed = cell('ft-C-full', 'C');
  assert.equal(failed.status, 'error');
  assert.equal(failed.reason, 'inference failed: server returned 500'); // the first line only
  assert.deepEqual(
    result.excluded.map((e) => `${e.model}/${e.task}/${e.status}`),
    ['ft-A-lora/C/skipped', 'ft-C-full/C/error'],
  );
  // the in-task cell failed: every index of that model is undefined with the reason
  assert.match(cell('ft-C-full', 'A').transfer_index.reason!, /in-task cell \(ft-C-full, C\) is not usable/);
  // barely better than the base on its own task
  const nearZero = cell('ft-B-full', 'A').transfer_index;
  assert.equal(nearZero.value, null);
  assert.match(nearZero.reason!, /in-task relative gain g\(B\) = 0\.01\d* is within ±0\.05 of zero/);
  // a topline that is not a per-sample mean: values, no intervals, and why
  const c = cell('ft-A-full', 'C');
  assert.ok(c.score.value !== null && c.score.low === null);
  assert.match(c.score.reason!, /topline metric micro_f1 .* is not the mean of the per-sample scores/);
  // the diagonal of a defined index is exactly 1
  assert.equal(cell('ft-A-full', 'A').transfer_index.value, 1);
  assert.match(cell('base', 'A').delta_vs_in_task.reason!, /ambiguous: ft-A-full, ft-A-lora/);
  assert.match(cell('ft-A-lora', 'B').delta_vs_in_task.reason!, /strategy lora-r8 on B/);
  // the matrix view has the same numbers
  const mi = result.matrix.models.indexOf('ft-A-full');
  const ti = result.matrix.tasks.indexOf('B');
  assert.equal(result.matrix.score[mi][ti], cell('ft-A-full', 'B').score.value);
  assert.equal(result.matrix.transfer_index[result.matrix.models.indexOf('ft-B-full')][0], null);
});

test('transfer: sample-mean scores give intervals where the topline had none; seeds are deterministic', () => {
  const input = loadTransferInput(GRID);
  const a = computeTransfer(input, { ...settings, score: 'sample-mean' });
  const c = a.cells.find((x) => x.model === 'ft-A-full' && x.task === 'C')!;
  const s = input.samples.get(cellKey('ft-A-full', 'C'))!;
  close(c.score.value, s.scores.reduce((p, q) => p + q, 0) / s.scores.length, 'sample mean');
  assert.ok(c.score.low !== null && c.score.low <= c.score.value! && c.score.high! >= c.score.value!);
  const b = computeTransfer(input, { ...settings, score: 'sample-mean' });
  assert.deepEqual(
    a.cells.map((x) => x.transfer_index),
    b.cells.map((x) => x.transfer_index),
  );
  const other = computeTransfer(input, { ...settings, score: 'sample-mean', seed: 8 });
  assert.notDeepEqual(
    a.cells.map((x) => x.score.low),
    other.cells.map((x) => x.score.low),
  );
  const none = computeTransfer(input, { ...settings, resamples: 0 });
  assert.equal(none.cells[0].score.low, null);
  assert.equal(none.cells[0].score.reason, 'no bootstrap (resamples = 0)');
});

/** A 1-model-per-role grid built in memory. */
function tinyGrid(scores: Record<string, Record<string, number[]>>): {
  grid: EvalGrid;
  samples: Map<string, SampleScores>;
} {
  const tasks = Object.keys(scores.base);
  const names = Object.keys(scores);
  const grid: EvalGrid = {
    schema: 'transferlab-eval-grid/1',
    created_at: 'x',
    updated_at: 'y',
    models: names.map((name) => ({
      name,
      path: null,
      role: name === 'base' ? 'base' : 'finetuned',
      base: name === 'base' ? null : 'base',
      train_task: name === 'base' ? null : name.slice(3),
      strategy: name === 'base' ? null : 'full',
      backend: 'local',
    })),
    tasks: tasks.map((t) => ({
      name: t,
      path: t,
      split: 'test',
      grader: 'exact_match',
      grader_options: {},
      n: scores.base[t].length,
      uids_sha256: '',
    })),
    cells: [],
  };
  const samples = new Map<string, SampleScores>();
  for (const m of names)
    for (const t of tasks) {
      const s = scores[m][t];
      const cell = {
        model: m,
        task: t,
        status: 'done' as const,
        topline_metric: 'acc',
        score: s.reduce((a, b) => a + b, 0) / s.length,
        metrics: {},
        n: s.length,
        key: '',
        log: null,
        seconds: 0,
        finished_at: '',
        ci: null,
      };
      grid.cells.push(cell as GridCell); // (typed loosely: the cell schema gains fields over time)
      samples.set(cellKey(m, t), {
        uids: s.map((_, i) => `${t}${i}`),
        scores: Float64Array.from(s),
        source: `${m}/${t}`,
      });
    }
  return { grid, samples };
}

test('transfer: closed forms of the relative gain with the floor, and a zero-variance bootstrap', () => {
  const { grid, samples } = tinyGrid({
    base: { x: [0, 0, 0, 0], y: [1, 0, 1, 0] },
    ft_x: { x: [1, 1, 0, 0], y: [1, 1, 1, 0] },
  });
  const r = computeTransfer({ grid, samples }, { resamples: 50, floor: 0.1 });
  const c = (t: string) => r.cells.find((x: TransferCell) => x.model === 'ft_x' && x.task === t)!;
  // base 0 on x: g = 0.5 / max(0, 0.1) − 1 = 4; on y: 0.75 / 0.5 − 1 = 0.5; index = 0.5 / 4
  close(c('x').relative_gain.value, 4, 'g(x)');
  close(c('y').relative_gain.value, 0.5, 'g(y)');
  close(c('y').transfer_index.value, 0.125, 'index');
  close(c('y').delta_vs_base.value, 0.25, 'delta');
  // the base scores 0 on every resample of x: its bootstrap score interval is [0, 0]
  const b = r.cells.find((x) => x.model === 'base' && x.task === 'x')!;
  assert.deepEqual([b.score.low, b.score.high], [0, 0]);

  // ft_x beats the base on x only through sample x0: resamples without it have g(x) = 0, an undefined index
  const paired = tinyGrid({
    base: { x: [0, 1, 0, 1], y: [1, 0, 1, 0] },
    ft_x: { x: [1, 1, 0, 1], y: [1, 1, 1, 0] },
  });
  const r2 = computeTransfer(paired, { resamples: 400 });
  const idx = r2.cells.find((x) => x.model === 'ft_x' && x.task === 'y')!.transfer_index;
  close(idx.value, 0.5 / 0.5, 'index'); // g(y) = 0.75 / 0.5 − 1, g(x) = 0.75 / 0.5 − 1
  // P(x0 never drawn in 4 draws) = (3/4)⁴ ≈ 0.32
  const u = idx.undefined_resamples!;
  assert.ok(u > 0.2 * 400 && u < 0.45 * 400, `undefined resamples ${u}`);
});

test('transfer: a log whose uids differ from the other models is excluded with the reason', () => {
  const { grid, samples } = tinyGrid({
    base: { x: [0, 1, 0, 1], y: [1, 0, 1, 0] },
    ft_x: { x: [1, 1, 1, 0], y: [1, 1, 0, 0] },
  });
  samples.set(cellKey('ft_x', 'y'), {
    uids: ['y0', 'y1', 'y2', 'zz'],
    scores: Float64Array.of(1, 1, 0, 0),
    source: 'log.jsonl',
  });
  const r = computeTransfer({ grid, samples }, { resamples: 10 });
  const c = r.cells.find((x) => x.model === 'ft_x' && x.task === 'y')!;
  assert.equal(c.score.value, null);
  assert.match(c.reason!, /log\.jsonl: uid zz is not among the task's evaluated uids/);
});

test('transfer: bad grid files and logs give one clear error each', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-transfer-'));
  try {
    const base = JSON.parse(readFileSync(join(GRID, 'eval_grid.json'), 'utf8'));
    const fails = (value: unknown, pattern: RegExp) =>
      assert.throws(
        () => parseEvalGrid(value, 'g.json'),
        (e: unknown) => e instanceof TlabError && pattern.test(e.message),
      );
    fails([{ model: 'a' }], /g\.json: is a list \(the cookbook's eval_grid_results\.json form\)/);
    fails({ ...base, schema: 'other/2' }, /g\.json: schema: 'other\/2' is not supported/);
    fails({ ...base, models: [{ ...base.models[0], role: 'teacher' }] }, /g\.json: models\.0\.role: /);
    fails(
      { ...base, cells: [{ ...base.cells[0], model: 'nope' }] },
      /cells\.0\.model: 'nope' is not one of the grid's models/,
    );
    fails({ ...base, cells: [base.cells[0], base.cells[0]] }, /cells\.1: a second cell for \(base, A\)/);
    const log = join(dir, 'bad.jsonl');
    writeFileSync(log, '{"uid":"a","score":1}\n{"uid":"b","score":"x"}\n');
    assert.throws(() => readGraderLogScores(log), /bad\.jsonl:2: score: expected a finite number, got "x"/);
    writeFileSync(log, '{"uid":"a","score":1}\n{"uid":"b","sc');
    assert.throws(
      () => readGraderLogScores(log),
      /bad\.jsonl:2: not a JSON object \(a truncated or corrupt line\)/,
    );
    assert.throws(() => loadTransferInput(join(dir, 'none')), /none: not found/);
    assert.throws(() => loadTransferInput(dir), /no eval_grid\.json in this folder/);
    assert.throws(
      () => computeTransfer(loadTransferInput(GRID), { floor: 0 }),
      /transfer: floor=0 must be a finite number > 0/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('transfer: outputs (json, csv with documented columns, heatmap) and the CLI', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-transfer-'));
  try {
    const result = computeTransfer(loadTransferInput(GRID), settings);
    const files = await writeTransferOutputs(result, dir);
    const rows = parseCsv(readFileSync(files.csv, 'utf8'));
    assert.deepEqual(rows[0], [...TRANSFER_CSV_COLUMNS]);
    assert.equal(rows.length, 1 + result.cells.length);
    const col = (name: string) => TRANSFER_CSV_COLUMNS.indexOf(name as (typeof TRANSFER_CSV_COLUMNS)[number]);
    const row = rows.find((r) => r[0] === 'ft-A-full' && r[col('eval_task')] === 'B')!;
    const cell = result.cells.find((c) => c.model === 'ft-A-full' && c.task === 'B')!;
    assert.equal(Number(row[col('transfer_index')]), cell.transfer_index.value);
    assert.equal(Number(row[col('score_low')]), cell.score.low);
    const skipped = rows.find((r) => r[0] === 'ft-A-lora' && r[col('eval_task')] === 'C')!;
    assert.equal(skipped[col('status')], 'skipped');
    assert.equal(skipped[col('score')], '');
    assert.equal(transferCsv(result), readFileSync(files.csv, 'utf8'));
    assert.match(readFileSync(files.heatmap.svg, 'utf8'), /<svg[\s\S]*ft-A-full/);
    assert.ok(readFileSync(files.heatmap.png).subarray(1, 4).toString() === 'PNG');

    // the CLI on a copy of the grid (its outputs go beside eval_grid.json by default)
    const grid = join(dir, 'grid');
    cpSync(GRID, grid, { recursive: true });
    const out = execFileSync(
      process.execPath,
      [
        'bin/tlab.js',
        'eval',
        'transfer',
        grid,
        '--resamples',
        '200',
        '--level',
        '0.9',
        '--seed',
        '7',
        '--json',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const printed = JSON.parse(out);
    assert.equal(printed.schema, 'transferlab-transfer/1');
    assert.deepEqual(
      printed.cells.map((c: TransferCell) => c.transfer_index.value),
      result.cells.map((c) => c.transfer_index.value),
    );
    for (const f of [
      'transfer.json',
      'transferability_results.csv',
      'transfer_heatmap.svg',
      'transfer_heatmap.png',
    ])
      assert.ok(existsSync(join(grid, f)), f);
    assert.throws(
      () =>
        execFileSync(process.execPath, ['bin/tlab.js', 'eval', 'transfer', join(dir, 'missing')], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      (e: { status: number; stderr: Buffer }) =>
        e.status !== 0 && /missing: not found/.test(e.stderr.toString()),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
