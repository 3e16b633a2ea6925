// Rank correlations against scipy (spec §11, §15.5), the .npy codec, seeded RNG parity with Python, and an
// end-to-end sweep and CLI run on small fixtures.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { readLabelFile, readMatrixFile } from '../../src/metrics/features.ts';
import { encodeNpy, parseNpy, writeNpy } from '../../src/metrics/io/npy.ts';
import {
  bootstrapInterval,
  kendallTau,
  pearson,
  relativeTop1,
  spearman,
  weightedKendallTau,
} from '../../src/metrics/rank-correlation.ts';
import { mulberry32 } from '../../src/metrics/rng.ts';
import { loadSweepConfig, runSweep, stratifiedSubsample, summarizeSweep } from '../../src/metrics/sweep.ts';

const DIR = join(import.meta.dirname, '../fixtures/metrics');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8'));
const ROOT = join(import.meta.dirname, '../..');

test('rank correlations match scipy (kendalltau, weightedtau, spearmanr, pearsonr) incl. ties', () => {
  for (const c of expected.correlation) {
    const close = (a: number, b: number, w: string) =>
      assert.ok(Math.abs(a - b) < 1e-12, `${c.name} ${w}: ${a} vs ${b}`);
    close(kendallTau(c.x, c.y), c.kendall, 'kendall');
    close(weightedKendallTau(c.x, c.y), c.weighted_kendall, 'weighted');
    close(weightedKendallTau(c.y, c.x), c.weighted_kendall, 'weighted symmetric');
    close(spearman(c.x, c.y), c.spearman, 'spearman');
    close(pearson(c.x, c.y), c.pearson, 'pearson');
    close(relativeTop1(c.x, c.y), c.relative_top1, 'top1');
  }
  const x = [1, 2, 3, 4, 5];
  assert.equal(weightedKendallTau(x, [5, 4, 3, 2, 1]), -1);
  const ci = bootstrapInterval(kendallTau, expected.correlation[0].x, expected.correlation[0].y, {
    resamples: 500,
  });
  assert.ok(ci.low <= ci.value && ci.value <= ci.high && ci.high <= 1, JSON.stringify(ci));
});

test('mulberry32 matches the Python port used by the fixture generator', () => {
  const r = mulberry32(42);
  for (const v of expected.mulberry32_seed42) assert.equal(r(), v);
});

test('.npy round trip (float64, float32, int64, Fortran order) and feature files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-npy-'));
  try {
    const f = Float32Array.from({ length: 12 }, (_, i) => i * 0.5);
    writeNpy(join(dir, 'f.npy'), [4, 3], f);
    const back = parseNpy(encodeNpy([4, 3], f));
    assert.deepEqual(back.shape, [4, 3]);
    assert.deepEqual(Array.from(back.data as Float32Array), Array.from(f));
    const m = await readMatrixFile(join(dir, 'f.npy'));
    assert.equal(m.data[5], 2.5);
    writeNpy(join(dir, 'y.npy'), [4], BigInt64Array.of(0n, 1n, 1n, 0n));
    assert.deepEqual(Array.from((await readLabelFile(join(dir, 'y.npy'))).labels), [0, 1, 1, 0]);
    // Fortran-ordered header: same bytes read as column-major
    const fortran = encodeNpy([2, 3], Float64Array.of(1, 4, 2, 5, 3, 6));
    const text = new TextDecoder('latin1')
      .decode(fortran)
      .replace("'fortran_order': False", "'fortran_order': True ");
    const parsed = parseNpy(Uint8Array.from(text, (c) => c.charCodeAt(0)));
    assert.deepEqual(Array.from(parsed.data as Float64Array), [1, 2, 3, 4, 5, 6]);
    writeSafetensors(
      join(dir, 'f.safetensors'),
      new Map([['feats', { dtype: 'float32', shape: [4, 3], data: f }]]),
    );
    assert.equal((await readMatrixFile(join(dir, 'f.safetensors'))).data[11], 5.5);
    await assert.rejects(readMatrixFile(join(dir, 'f.safetensors#nope')), /no tensor 'nope'/);
    await assert.rejects(readMatrixFile(join(dir, 'y.npy')), /expected a 2-D array/);
    assert.throws(() => parseNpy(new Uint8Array(20)), /missing \\x93NUMPY magic/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stratified subsample keeps class proportions and is seeded', () => {
  const y = Int32Array.from({ length: 100 }, (_, i) => (i < 70 ? 0 : i < 90 ? 1 : 2));
  const s = stratifiedSubsample(y, 3, 20, 1);
  const counts = [0, 0, 0];
  for (const i of s) counts[y[i]]++;
  assert.deepEqual(counts, [14, 4, 2]);
  assert.deepEqual(Array.from(stratifiedSubsample(y, 3, 20, 1)), Array.from(s));
  assert.notDeepEqual(Array.from(stratifiedSubsample(y, 3, 20, 2)), Array.from(s));
});

test('sweep: one JSON per (model, task, metric, n, seed), resumable, summary with correlations and plots', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-sweep-'));
  try {
    const data = join(DIR, 'data');
    const models = ['tall', 'binary_unbalanced', 'offset', 'unbalanced'];
    const cfg = {
      entries: models.map((m) => ({
        model: m,
        task: 't',
        features: join(data, `${m}_features.npy`),
        labels: join(data, `${m}_labels.npy`),
        source_probs: join(data, `${m}_probs.npy`),
      })),
      metrics: ['logme', { name: 'knn', id: 'knn3', options: { k: 3 } }, 'leep'],
      n_samples: [60, 'all'],
      seeds: [0, 1],
      accuracy: 'acc.csv',
    };
    writeFileSync(join(dir, 'sweep.json'), JSON.stringify(cfg));
    writeFileSync(
      join(dir, 'acc.csv'),
      `model,task,accuracy\n${models.map((m, i) => `${m},t,${80 + i}`).join('\n')}\n`,
    );
    const { config, baseDir } = loadSweepConfig(join(dir, 'sweep.json'));
    const out = join(dir, 'out');
    const results = await runSweep(config, baseDir, { out, quiet: true });
    // n=60 per seed; 'all' once (first seed): without a subsample every seed scores the same rows.
    assert.equal(results.length, 4 * 3 * (2 + 1));
    const one = join(out, 'results', 'tall', 't', 'knn3', 'n60_seed1.json');
    const mtime = statSync(one).mtimeMs;
    const again = await runSweep(config, baseDir, { out, quiet: true });
    assert.equal(statSync(one).mtimeMs, mtime, 'existing results are reused');
    assert.deepEqual(
      again.map((r) => r.score),
      results.map((r) => r.score),
    );
    const summary = await summarizeSweep(
      results,
      [
        { model: 'tall', task: 't', accuracy: 80 },
        { model: 'offset', task: 't', accuracy: 90 },
        { model: 'unbalanced', task: 't', accuracy: 85 },
      ],
      out,
    );
    assert.ok(summary.correlations.length > 0);
    assert.ok(existsSync(join(out, 'summary.json')));
    for (const p of [
      't/logme_vs_samples.png',
      't/logme_vs_samples.svg',
      't/logme_vs_accuracy.png',
      't/knn3_vs_accuracy.svg',
    ])
      assert.ok(existsSync(join(out, 'plots', p)), p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: tlab metrics score --json prints metric, score, n, d, c; bad input exits 1 with the error first', () => {
  const data = join(DIR, 'data');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'bin/tlab.js'), 'metrics', 'score', ...args], {
      encoding: 'utf8',
    });
  const ok = run(
    '--features',
    join(data, 'C_features.npy'),
    '--labels',
    join(data, 'C_labels.npy'),
    '--metric',
    'logme',
    '--json',
  );
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.deepEqual({ ...j, score: undefined }, { metric: 'logme', score: undefined, n: 60, d: 8, c: 4 });
  assert.ok(Math.abs(j.score - expected.metrics.C.logme) < 1e-9);
  const bad = run(
    '--features',
    join(data, 'C_features.npy'),
    '--labels',
    join(data, 'A_labels.npy'),
    '--metric',
    'logme',
  );
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.split('\n')[0], /A_labels.npy has 12 rows but .*C_features.npy has 60/);
});
