import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { domainClassifier, stratifiedFolds } from '../../src/eval/shift/domain-classifier.ts';
import { frechetDistance } from '../../src/eval/shift/frechet.ts';
import { labelDivergence } from '../../src/eval/shift/label-divergence.ts';
import { mmd2Rbf } from '../../src/eval/shift/mmd.ts';
import { fromRows, type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { TlabError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/random.ts';

// References from numpy (explicit MMD double sums), scipy (sqrtm, jensenshannon) and scikit-learn
// (StratifiedKFold, StandardScaler, LogisticRegression), with the same mulberry32 draws:
// test/fixtures/eval/shift/make_fixtures.py.
const fx = JSON.parse(readFileSync(new URL('../fixtures/eval/shift/expected.json', import.meta.url), 'utf8'));

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));

test('MMD²: unbiased statistic, median-heuristic σ and permutation p-value match numpy', async () => {
  for (const c of fx.mmd) {
    const r = await mmd2Rbf(fromRows(c.x), fromRows(c.y), {
      permutations: c.permutations,
      maxSamples: c.max_samples,
      seed: c.seed,
    });
    assert.ok(rel(r.sigma, c.sigma) < 1e-12, `${c.name} sigma ${r.sigma} vs ${c.sigma}`);
    assert.ok(rel(r.mmd2, c.mmd2) < 1e-10, `${c.name} mmd2 ${r.mmd2} vs ${c.mmd2}`);
    assert.equal(r.pValue, c.p_value, `${c.name} p-value`);
    assert.deepEqual([r.m, r.n], [c.m, c.n]);
    assert.equal(r.subsampled, c.name === 'subsampled');
  }
});

test('Fréchet distance matches scipy.linalg.sqrtm (with and without PCA)', async () => {
  for (const c of fx.frechet) {
    const r = await frechetDistance(fromRows(c.x), fromRows(c.y), { pcaDims: c.pca_dims });
    assert.ok(rel(r.distance, c.distance) < 1e-9, `${c.name}: ${r.distance} vs ${c.distance}`);
    assert.equal(r.dims, c.pca_dims ?? c.x[0].length);
    assert.ok(rel(r.meanTerm + r.covarianceTerm, r.distance) < 1e-12);
  }
});

test('domain classifier: held-out accuracy and proxy A-distance match scikit-learn on the same folds', () => {
  for (const c of fx.domain) {
    const r = domainClassifier(fromRows(c.x), fromRows(c.y), {
      folds: c.folds,
      C: c.C,
      maxSamples: c.max_samples,
      seed: c.seed,
      tol: 1e-10,
      maxIter: 10000,
    });
    assert.equal(r.perTask, c.per_task);
    assert.deepEqual(r.foldAccuracies, c.fold_accuracies, c.name);
    assert.equal(r.accuracy, c.accuracy);
    assert.ok(Math.abs(r.proxyADistance - c.proxy_a_distance) < 1e-12);
    assert.ok(r.converged);
  }
  for (const c of fx.folds) assert.deepEqual(Array.from(stratifiedFolds(c.labels, c.k)), c.folds);
});

test('label JS divergence and TV match scipy (smoothing, disjoint supports reach ln 2)', () => {
  for (const c of fx.labels) {
    const r = labelDivergence(c.a, c.b, c.smoothing);
    assert.deepEqual(r.classes, c.classes);
    for (let i = 0; i < c.p.length; i++) assert.ok(Math.abs(r.p[i] - c.p[i]) < 1e-15);
    assert.ok(Math.abs(r.js - c.js) < 1e-12, `js ${r.js} vs ${c.js}`);
    assert.ok(Math.abs(r.tv - c.tv) < 1e-12);
    assert.ok(r.js >= 0 && r.js <= Math.LN2);
  }
  assert.equal(labelDivergence([1, 2, 2], [2, 1, 2]).js, 0);
});

function gaussian(rows: number, cols: number, seed: number, shift = 0, scale = 1): Matrix {
  const rng = new Rng(seed);
  const m = matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = shift + scale * rng.normal();
  return m;
}

test('properties: one distribution vs a shifted one (MMD², p-value, Fréchet, domain classifier)', async () => {
  const a = gaussian(150, 8, 1);
  const b = gaussian(150, 8, 2);
  const shifted = gaussian(150, 8, 3, 0.7);
  const same = await mmd2Rbf(a, b, { permutations: 200, seed: 1 });
  const diff = await mmd2Rbf(a, shifted, { permutations: 200, seed: 1 });
  assert.ok(Math.abs(same.mmd2) < 0.01, `same ${same.mmd2}`);
  assert.ok(same.pValue! > 0.05, `same-distribution p ${same.pValue}`);
  assert.ok(diff.mmd2 > 10 * Math.abs(same.mmd2), `shifted ${diff.mmd2}`);
  assert.equal(diff.pValue, 1 / 201); // no permutation reaches it
  assert.equal((await frechetDistance(a, a)).distance, 0);
  const fdSame = (await frechetDistance(a, b)).distance;
  const fdShift = (await frechetDistance(a, shifted)).distance;
  assert.ok(fdShift > 5 * fdSame, `${fdShift} vs ${fdSame}`);
  // FD of two Gaussians with the same covariance is ‖μ₁ − μ₂‖² ≈ 8 · 0.7²
  assert.ok(Math.abs(fdShift - 8 * 0.49) < 1.5, `${fdShift}`);
  const dSame = domainClassifier(a, b, { seed: 2 });
  const dShift = domainClassifier(a, shifted, { seed: 2 });
  assert.ok(Math.abs(dSame.accuracy - 0.5) < 0.12, `chance-level ${dSame.accuracy}`);
  // the Bayes accuracy of two unit Gaussians 0.7·√8 apart is Φ(0.7·√8 / 2) ≈ 0.839
  assert.ok(Math.abs(dShift.accuracy - 0.839) < 0.07 && dShift.proxyADistance > 1, `${dShift.accuracy}`);
  // more rows than the cap: a seeded, balanced subsample
  const capped = domainClassifier(a, gaussian(400, 8, 4, 0.7), { seed: 2, maxSamples: 100 });
  assert.equal(capped.perTask, 100);
});

test('Fréchet warns when a set has fewer rows than dimensions', async () => {
  const r = await frechetDistance(gaussian(6, 10, 1), gaussian(20, 10, 2));
  assert.match(r.warning!, /6 rows in a set but 10 dimensions/);
  const p = await frechetDistance(gaussian(6, 10, 1), gaussian(20, 10, 2), { pcaDims: 4 });
  assert.equal(p.warning, undefined);
  assert.ok(p.explainedVariance! > 0 && p.explainedVariance! <= 1);
});

test('shift measures: bad input gives one clear error each', async () => {
  const a = gaussian(20, 4, 1);
  const rejects = async (fn: () => Promise<unknown> | unknown, pattern: RegExp) => {
    await assert.rejects(
      async () => fn(),
      (e: unknown) => e instanceof TlabError && pattern.test(e.message),
    );
  };
  await rejects(
    () => mmd2Rbf(a, gaussian(20, 5, 2)),
    /MMD: first set has 4 feature columns but second has 5/,
  );
  await rejects(() => mmd2Rbf(a, gaussian(1, 4, 2)), /MMD: second set has 1 rows; at least 2 are needed/);
  const nan = gaussian(5, 4, 3);
  nan.data[9] = Number.NaN;
  await rejects(() => mmd2Rbf(a, nan), /MMD: second set: row 2 contains NaN \(column 1\)/);
  await rejects(() => mmd2Rbf(a, a, { permutations: -1 }), /permutations=-1 must be an integer ≥ 0/);
  await rejects(
    () => frechetDistance(a, gaussian(20, 3, 2)),
    /Fréchet distance: first set has 4 feature columns/,
  );
  await rejects(() => frechetDistance(a, a, { pcaDims: 9 }), /pca_dims=9 must be an integer in \[1, 4\]/);
  await rejects(
    () => domainClassifier(a, gaussian(3, 4, 2)),
    /domain classifier: second set has 3 rows; at least 5/,
  );
  await rejects(() => domainClassifier(a, a, { folds: 1 }), /folds=1 must be at least 2/);
  await rejects(() => labelDivergence([], ['a']), /a label set is empty/);
  const dup = matrix(6, 2); // every row identical: no median distance
  await rejects(() => mmd2Rbf(dup, dup), /median pairwise distance of the pooled sample is 0/);
});
