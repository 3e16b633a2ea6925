import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { analyzeShift, DEFAULT_SHIFT_SETTINGS, type ShiftTask } from '../../src/eval/shift/analysis.ts';
import { transferPoints } from '../../src/eval/shift/correlation.ts';
import { SHIFT_CSV_COLUMNS, writeShiftOutputs } from '../../src/eval/shift/output.ts';
import type { TransferResult } from '../../src/eval/transfer.ts';
import { type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { writeNpy } from '../../src/metrics/io/npy.ts';
import { bootstrapInterval, spearman } from '../../src/metrics/rank-correlation.ts';
import { parseCsv } from '../../src/util/csv.ts';
import { Rng } from '../../src/util/random.ts';

/** Task features: unit Gaussians whose means move further from task A in steps of `shift`. */
function features(rows: number, cols: number, seed: number, shift: number): Matrix {
  const rng = new Rng(seed);
  const m = matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = rng.normal() + (i % cols === 0 ? shift : 0);
  return m;
}

/** A transfer result with the index of each ordered pair given (only the fields the correlation reads). */
function transferWith(indices: Record<string, number | null>, strategy = 'full'): TransferResult {
  const tasks = [...new Set(Object.keys(indices).flatMap((k) => k.split('>')))];
  const models = tasks.map((t) => ({
    name: `ft-${t}`,
    path: null,
    role: 'finetuned' as const,
    base: 'base',
    train_task: t,
    strategy,
    backend: 'local' as const,
  }));
  const cells = Object.entries(indices).map(([k, v]) => {
    const [i, j] = k.split('>');
    return { model: `ft-${i}`, task: j, train_task: i, transfer_index: { value: v, low: null, high: null } };
  });
  return { schema: 'transferlab-transfer/1', models, cells } as unknown as TransferResult;
}

const settings = {
  ...DEFAULT_SHIFT_SETTINGS,
  measures: ['mmd', 'frechet', 'domain', 'label-js'] as const,
  mmd: { permutations: 50, maxSamples: 200, bandwidth: null },
  correlation: { resamples: 300, level: 0.9 },
};

function tasks(): ShiftTask[] {
  return [
    { name: 'A', features: features(80, 4, 1, 0), labels: Array(40).fill('x').concat(Array(40).fill('y')) },
    { name: 'B', features: features(70, 4, 2, 0.6), labels: Array(50).fill('x').concat(Array(20).fill('y')) },
    { name: 'C', features: features(90, 4, 3, 1.5), labels: Array(10).fill('x').concat(Array(80).fill('z')) },
  ];
}

test('shift analysis: pairwise matrices follow the feature shift; correlation with transfer over pairs', async () => {
  // transfer falls with distance from A (A→B > A→C), B↔C in between
  const transfer = transferWith({ 'A>B': 0.8, 'A>C': 0.1, 'B>A': 0.7, 'B>C': 0.5, 'C>A': 0.05, 'C>B': 0.4 });
  const r = await analyzeShift(tasks(), { ...settings, measures: [...settings.measures] }, { transfer });
  assert.equal(r.schema, 'transferlab-shift/1');
  assert.deepEqual(
    r.pairs.map((p) => `${p.a}~${p.b}`),
    ['A~B', 'A~C', 'B~C'],
  );
  const mmd = r.matrices.mmd2!;
  assert.equal(mmd.values[0][0], null);
  assert.equal(mmd.values[0][2], mmd.values[2][0]);
  // A~C (1.5 apart) is further than A~B (0.6) and B~C (0.9) in every feature measure
  for (const q of ['mmd2', 'frechet', 'proxy_a_distance'] as const) {
    const v = r.matrices[q]!.values;
    assert.ok(v[0][2]! > v[0][1]! && v[0][2]! > v[1][2]!, `${q}: ${JSON.stringify(v)}`);
  }
  assert.ok(r.pairs[0].label!.classes.includes('y'));
  const c = r.correlation!;
  assert.equal(c.points.length, 6);
  // the correlation is Spearman over the six ordered pairs (symmetric shift values), with the module's bootstrap
  for (const q of ['mmd2', 'frechet', 'proxy_a_distance', 'label_js'] as const) {
    const xs = c.points.map((p) => p[q] as number);
    const ys = c.points.map((p) => p.index);
    const m = c.measures[q]!;
    assert.equal(m.pairs, 6);
    assert.equal(m.spearman, spearman(xs, ys));
    const ci = bootstrapInterval(spearman, xs, ys, { resamples: 300, level: 0.9, seed: 0 });
    assert.deepEqual([m.low, m.high, m.valid_resamples], [ci.low, ci.high, ci.valid]);
  }
  assert.ok(c.measures.mmd2!.spearman! < -0.8, `more shift, less transfer: ${c.measures.mmd2!.spearman}`);
});

test('shift correlation: transfer points average models, skip undefined indices, and need 3 pairs', async () => {
  const t = transferWith({ 'A>B': 0.8, 'A>C': null, 'B>A': 0.6 });
  const pts = transferPoints(t);
  assert.deepEqual(
    pts.map((p) => `${p.train_task}>${p.eval_task}=${p.index}`),
    ['A>B=0.8', 'B>A=0.6'],
  );
  const r = await analyzeShift(tasks(), { ...settings, measures: ['label-js'] }, { transfer: t });
  assert.equal(r.correlation!.measures.label_js!.spearman, null);
  assert.match(
    r.correlation!.measures.label_js!.reason!,
    /2 task pairs with both values; Spearman needs at least 3/,
  );
  assert.equal(r.correlation!.measures.mmd2, undefined);
  // a transfer task without shift input is reported
  const other = await analyzeShift(
    tasks(),
    { ...settings, measures: ['label-js'] },
    { transfer: transferWith({ 'A>Z': 1, 'Z>A': 2 }) },
  );
  assert.deepEqual(other.correlation!.unmatched, ['A→Z', 'Z→A']);
  await assert.rejects(
    analyzeShift([tasks()[0], { name: 'B', labels: ['x'] }], { ...settings, measures: ['mmd'] }),
    /shift: measure mmd needs features for every task; B has none/,
  );
});

test('tlab eval shift: feature folders, labels with class names, --transfer, files and plots', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-shift-'));
  try {
    const args: string[] = [];
    tasks().forEach((t, k) => {
      const folder = join(dir, t.name);
      mkdirSync(folder);
      const f = t.features!;
      writeSafetensors(join(folder, 'features.safetensors'), {
        features: { dtype: 'float32', shape: [f.rows, f.cols], data: Float32Array.from(f.data) },
      });
      const classes = [...new Set(t.labels)].sort();
      writeNpy(
        join(folder, 'labels.npy'),
        [t.labels!.length],
        Int32Array.from(t.labels!, (l) => classes.indexOf(l)),
      );
      writeFileSync(join(folder, 'features.json'), JSON.stringify({ classes, k }));
      args.push('--features', `${t.name}=${folder}`);
    });
    const transferFile = join(dir, 'transfer.json');
    writeFileSync(
      transferFile,
      JSON.stringify(
        transferWith({ 'A>B': 0.8, 'A>C': 0.1, 'B>A': 0.7, 'B>C': 0.5, 'C>A': 0.05, 'C>B': 0.4 }),
      ),
    );
    const out = join(dir, 'out');
    const stdout = execFileSync(
      process.execPath,
      [
        'bin/tlab.js',
        'eval',
        'shift',
        ...args,
        '--transfer',
        transferFile,
        '--permutations',
        '20',
        '--out',
        out,
        '--json',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const result = JSON.parse(stdout);
    assert.deepEqual(result.settings.measures, ['mmd', 'frechet', 'domain', 'label-js']);
    // labels compared by class name: C's 'z' class is its own, not C's index 1 = 'y'
    assert.deepEqual(result.pairs[1].label.classes, ['x', 'y', 'z']);
    assert.ok(result.correlation.measures.frechet.spearman < 0);
    const csv = parseCsv(readFileSync(join(out, 'shift_pairs.csv'), 'utf8'));
    assert.deepEqual(csv[0], [...SHIFT_CSV_COLUMNS]);
    assert.equal(csv.length, 4);
    for (const f of [
      'shift.json',
      'shift_heatmap.svg',
      'shift_heatmap.png',
      'shift_vs_transfer.svg',
      'shift_vs_transfer.png',
    ])
      assert.ok(existsSync(join(out, f)), f);
    // mismatched widths: one error naming the file
    writeSafetensors(join(dir, 'wide.safetensors'), {
      features: { dtype: 'float32', shape: [10, 5], data: new Float32Array(50) },
    });
    assert.throws(
      () =>
        execFileSync(
          process.execPath,
          [
            'bin/tlab.js',
            'eval',
            'shift',
            '--features',
            `A=${join(dir, 'A')}`,
            '--features',
            `W=${join(dir, 'wide.safetensors')}`,
            '--out',
            out,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        ),
      (e: { status: number; stderr: Buffer }) =>
        e.status !== 0 &&
        /wide\.safetensors#features has 5 feature columns but .*A\/features\.safetensors#features has 4/.test(
          e.stderr.toString(),
        ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shift outputs: rewriting leaves exactly the result files (no temp files)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-shift-'));
  try {
    const r = await analyzeShift(tasks(), { ...settings, measures: ['frechet', 'label-js'] });
    await writeShiftOutputs(r, dir);
    const files = await writeShiftOutputs(r, dir);
    assert.equal(files.scatter, null);
    assert.equal(JSON.parse(readFileSync(files.json, 'utf8')).pairs.length, 3);
    assert.deepEqual(readdirSync(dir).sort(), [
      'shift.json',
      'shift_heatmap.png',
      'shift_heatmap.svg',
      'shift_pairs.csv',
    ]);
    assert.deepEqual(readFileSync(files.csv, 'utf8').split('\n')[1].split(',').slice(0, 2), ['A', 'B']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
