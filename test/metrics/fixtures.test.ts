// Every estimator against the independent numpy/scipy reference in test/fixtures/metrics/make_metrics.py
// (spec metrics.md §15 fixtures A/B/C plus tall, wide (N < D), binary unbalanced, unbalanced, PCA and
// uncentred cases), to 1e-6 relative. Also forces the onnxruntime product path on one case.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { setOrtMinFlops } from '../../src/linalg/products.ts';
import { gbc } from '../../src/metrics/gbc.ts';
import { hScore, shrinkageHScoreDetails } from '../../src/metrics/hscore.ts';
import { readNpy } from '../../src/metrics/io/npy.ts';
import { knnAccuracy } from '../../src/metrics/knn-accuracy.ts';
import { argmaxRows, leep, nce } from '../../src/metrics/leep.ts';
import { logme, logmeDetails } from '../../src/metrics/logme.ts';
import { nleep } from '../../src/metrics/nleep.ts';
import { parc } from '../../src/metrics/parc.ts';
import { sfda } from '../../src/metrics/sfda.ts';
import { transRate } from '../../src/metrics/transrate.ts';

const DIR = join(import.meta.dirname, '../fixtures/metrics');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8'));
const cases = Object.keys(expected.metrics) as string[];

function load(name: string): { f: Matrix; y: Int32Array; theta: Matrix } {
  const f = readNpy(join(DIR, 'data', `${name}_features.npy`));
  const y = readNpy(join(DIR, 'data', `${name}_labels.npy`));
  const t = readNpy(join(DIR, 'data', `${name}_probs.npy`));
  return {
    f: matrix(f.shape[0], f.shape[1], f.data as Float64Array),
    y: Int32Array.from(y.data as BigInt64Array, Number),
    theta: matrix(t.shape[0], t.shape[1], t.data as Float64Array),
  };
}

function close(actual: number, want: number, what: string, rel = 1e-6): void {
  const tol = rel * Math.max(1, Math.abs(want));
  assert.ok(Math.abs(actual - want) <= tol, `${what}: got ${actual}, expected ${want}`);
}

for (const name of cases) {
  const e = expected.metrics[name];
  test(`fixtures ${name}: LogME corrected, thuml-compat, ICML, per class (spec §2, §15.2)`, async () => {
    const { f, y } = load(name);
    const r = await logmeDetails(f, y);
    close(r.score, e.logme, 'logme');
    e.logme_per_class.forEach((p: number[], c: number) => {
      close(r.perTarget[c].evidence, p[0], `logme class ${c}`);
      close(r.perTarget[c].alpha, p[1], `alpha ${c}`);
      close(r.perTarget[c].beta, p[2], `beta ${c}`);
    });
    close(await logme(f, y, { thumlCompat: true }), e.logme_thuml, 'logme thuml');
    close(await logme(f, y, { variant: 'icml' }), e.logme_icml, 'logme icml');
  });
  test(`fixtures ${name}: H-score, shrinkage H-score, TransRate, SFDA (spec §5, §9, §10)`, async () => {
    const { f, y } = load(name);
    close(await hScore(f, y), e.hscore, 'hscore');
    const sh = await shrinkageHScoreDetails(f, y);
    close(sh.score, e.shrinkage_hscore, 'shrinkage hscore');
    close(sh.shrinkage, e.ledoit_wolf_alpha, 'ledoit-wolf alpha');
    close(await transRate(f, y), e.transrate, 'transrate');
    close(await sfda(f, y), e.sfda, 'sfda');
  });
  test(`fixtures ${name}: GBC, PARC (default PCA and none), kNN (spec §6-§8)`, async () => {
    const { f, y } = load(name);
    close(await gbc(f, y), e.gbc, 'gbc spherical');
    close(await gbc(f, y, { gaussian: 'diagonal' }), e.gbc_diagonal, 'gbc diagonal');
    close(await gbc(f, y, { pcaDims: null }), e.gbc_nopca, 'gbc no pca');
    close(await parc(f, y), e.parc, 'parc');
    close(await parc(f, y, { pcaDims: null }), e.parc_nopca, 'parc no pca');
    close(await knnAccuracy(f, y, { k: 1 }), e.knn1, 'knn k=1');
    close(await knnAccuracy(f, y, { k: 3 }), e.knn3, 'knn k=3');
    if (e.knn5 !== null) close(await knnAccuracy(f, y, { k: 5 }), e.knn5, 'knn k=5');
  });
  test(`fixtures ${name}: LEEP, NCE${e.nleep !== undefined ? ', NLEEP' : ''} (spec §3, §4)`, async () => {
    const { f, y, theta } = load(name);
    close(await leep(theta, y), e.leep, 'leep');
    close(nce(argmaxRows(theta), y), e.nce, 'nce');
    if (e.nleep !== undefined) close(await nleep(f, y, { seed: 0 }), e.nleep, 'nleep');
  });
}

test('fixtures: the onnxruntime product path gives the same scores', async () => {
  const prev = setOrtMinFlops(0);
  try {
    for (const name of ['tall', 'wide', 'pca']) {
      const { f, y } = load(name);
      const e = expected.metrics[name];
      close(await logme(f, y), e.logme, `${name} logme (ort)`);
      close(await hScore(f, y), e.hscore, `${name} hscore (ort)`);
      close(await transRate(f, y), e.transrate, `${name} transrate (ort)`);
      close(await parc(f, y), e.parc, `${name} parc (ort)`);
      close((await shrinkageHScoreDetails(f, y)).score, e.shrinkage_hscore, `${name} shrinkage (ort)`);
      close(await sfda(f, y), e.sfda, `${name} sfda (ort)`);
      close(await gbc(f, y), e.gbc, `${name} gbc (ort)`);
      if (e.nleep !== undefined) close(await nleep(f, y, { seed: 0 }), e.nleep, `${name} nleep (ort)`);
    }
  } finally {
    setOrtMinFlops(prev);
  }
});

test('H-scores (spec §5): the Cholesky solve path equals the pinv eigen path on every fixture', async () => {
  for (const name of cases) {
    const { f, y } = load(name);
    close(await hScore(f, y), await hScore(f, y, { method: 'eigen' }), `${name} hscore`, 1e-9);
    const auto = await shrinkageHScoreDetails(f, y);
    const eigen = await shrinkageHScoreDetails(f, y, { method: 'eigen' });
    close(auto.score, eigen.score, `${name} shrinkage hscore`, 1e-9);
  }
});
