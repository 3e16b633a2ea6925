// Invariances, limiting cases and bad input (spec metrics.md §15.3, §15.4, §1).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eigh } from '../../src/linalg/eigh.ts';
import { type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { gbc } from '../../src/metrics/gbc.ts';
import { hScore, shrinkageHScore } from '../../src/metrics/hscore.ts';
import { knnAccuracy } from '../../src/metrics/knn-accuracy.ts';
import { leep, nce } from '../../src/metrics/leep.ts';
import { logme, logmeDetails } from '../../src/metrics/logme.ts';
import { nleep } from '../../src/metrics/nleep.ts';
import { parc } from '../../src/metrics/parc.ts';
import { scoreMetric } from '../../src/metrics/registry.ts';
import { transRate } from '../../src/metrics/transrate.ts';
import { TlabError } from '../../src/util/errors.ts';
import { fixtureA, fixtureC, limitsSet } from './spec-fixtures.ts';

function map(f: Matrix, fn: (v: number, i: number, j: number) => number): Matrix {
  const out = matrix(f.rows, f.cols);
  for (let i = 0; i < f.rows; i++)
    for (let j = 0; j < f.cols; j++) out.data[i * f.cols + j] = fn(f.data[i * f.cols + j], i, j);
  return out;
}

/** An orthogonal matrix: eigenvectors of a symmetric one (spec §15.3 only needs some rotation Q). */
async function orthogonal(n: number): Promise<Matrix> {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) m.data[i * n + j] = Math.sin(0.3 * (i + j) + 0.7 * i * j + 0.1);
  return (await eigh(m)).vectors;
}

function rotate(f: Matrix, q: Matrix): Matrix {
  return map(f, (_, i, j) => {
    let s = 0;
    for (let k = 0; k < f.cols; k++) s += f.data[i * f.cols + k] * q.data[k * q.cols + j];
    return s;
  });
}

const { features: C, labels: yC } = fixtureC();
const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test('invariance (spec §15.3): row permutation and class relabelling leave every estimator unchanged', async () => {
  const n = C.rows;
  const perm = Array.from({ length: n }, (_, i) => (7 * i + 3) % n);
  const Fp = map(C, (_, i, j) => C.data[perm[i] * C.cols + j]);
  const yp = Int32Array.from(perm, (p) => yC[p]);
  const yr = yC.map((c) => (c + 1) % 4);
  for (const name of ['logme', 'hscore', 'shrinkage-hscore', 'transrate', 'gbc', 'parc', 'knn', 'sfda']) {
    const base = await scoreMetric(name, { features: C, labels: yC });
    near(await scoreMetric(name, { features: Fp, labels: yp }), base, 1e-9, `${name} permuted`);
    near(await scoreMetric(name, { features: C, labels: yr }), base, 1e-9, `${name} relabelled`);
  }
});

test('invariance (spec §15.3): rotation, shift and scaling where the spec says so', async () => {
  const Q = await orthogonal(8);
  const R = rotate(C, Q);
  const shifted = map(C, (v) => v + 5);
  const scaled = map(C, (v) => v * 10);
  near(await logme(R, yC), await logme(C, yC), 1e-9, 'logme rotation');
  near(await hScore(R, yC), await hScore(C, yC), 1e-9, 'hscore rotation');
  near(
    await hScore(
      map(C, (v, _, j) => v * (1 + 0.5 * j) + 3),
      yC,
    ),
    await hScore(C, yC),
    1e-9,
    'hscore affine',
  );
  near(await shrinkageHScore(scaled, yC), await shrinkageHScore(C, yC), 1e-9, 'shrink-H scale');
  near(await transRate(R, yC), await transRate(C, yC), 1e-9, 'transrate rotation');
  near(await transRate(shifted, yC), await transRate(C, yC), 1e-9, 'transrate shift');
  near(await gbc(R, yC), await gbc(C, yC), 1e-9, 'gbc spherical rotation');
  near(await parc(shifted, yC), await parc(C, yC), 1e-9, 'parc shift');
  near(await knnAccuracy(R, yC), await knnAccuracy(C, yC), 1e-12, 'knn rotation');
  // not invariant: LogME has no intercept, TransRate depends on ε
  near(await logme(shifted, yC), -0.28603, 1e-4, 'logme + 5 (spec value)');
  near(await transRate(scaled, yC), 0.80416, 1e-4, 'transrate ×10 (spec value)');
});

test('LogME (spec §2.4): corrected score ignores appended zero columns, thuml-compat does not', async () => {
  const Z = map(matrix(C.rows, 10), (_, i, j) => (j < 8 ? C.data[i * 8 + j] : 0));
  near(await logme(Z, yC), -0.3771058039700357, 1e-9, 'corrected');
  near(await logme(Z, yC, { thumlCompat: true }), -0.30567, 1e-4, 'thuml compat');
});

test('LogME (spec §2.5): C = 2 evidences differ per class (no intercept)', async () => {
  const y2 = Int32Array.from({ length: C.rows }, (_, i) => i % 2);
  const r = await logmeDetails(C, y2);
  near(r.perTarget[0].evidence, -0.69008, 1e-4, 'class 0');
  near(r.perTarget[1].evidence, -0.72512, 1e-4, 'class 1');
});

test('limits (spec §15.4): separable features outrank random ones for every estimator', async () => {
  const { labels, perfect, random } = limitsSet();
  near(await logme(perfect, labels), 8.2537, 1e-4, 'logme perfect');
  near(await logme(random, labels), -0.8693, 1e-3, 'logme random');
  near(await hScore(perfect, labels), 2.0, 1e-9, 'H perfect');
  near(await hScore(random, labels), 0.0155, 1e-2, 'H random');
  near(await shrinkageHScore(random, labels), 0, 1e-9, 'shrink-H random');
  near(await knnAccuracy(perfect, labels), 1, 1e-12, '1-NN perfect');
  near(await knnAccuracy(random, labels), 0.332, 1e-9, '1-NN random');
  near(await gbc(random, labels), -5.9645, 1e-3, 'gbc random');
  near(await transRate(random, labels), 0.0055, 0.05, 'transrate random');
  for (const name of ['logme', 'hscore', 'gbc', 'knn', 'parc', 'transrate']) {
    const p = await scoreMetric(name, { features: perfect, labels });
    const r = await scoreMetric(name, { features: random, labels });
    assert.ok(p > r, `${name}: perfect ${p} should beat random ${r}`);
  }
  assert.ok(
    (await nleep(perfect, labels, { varianceFraction: null })) > (await nleep(random, labels)),
    'nleep',
  );
});

test('LEEP/NCE identities (spec §3.1, §4)', async () => {
  const { labels } = fixtureA();
  const z = [0, 0, 4, 4, 3, 3, 2, 2, 1, 0, 0, 4];
  const onehot = matrix(12, 5);
  z.forEach((k, i) => {
    onehot.data[i * 5 + k] = 1;
  });
  near(await leep(onehot, labels), -0.621226662447, 1e-9, 'LEEP(onehot z) = NCE');
  near(nce(z, labels), -0.621226662447, 1e-9, 'NCE');
  const { labels: y3 } = limitsSet();
  const uniform = matrix(1000, 4, new Float64Array(4000).fill(0.25));
  near(await leep(uniform, y3), -1.0986113, 1e-6, 'uniform θ = −H(Y)');
  near(nce(y3, y3), 0, 1e-12, 'z = y');
});

test('bad input gives a TlabError naming the input', async () => {
  const { features, labels } = fixtureA();
  const nan = map(features, (v, i, j) => (i === 7 && j === 2 ? Number.NaN : v));
  await assert.rejects(
    logme(nan, labels, { names: { features: 'features.npy' } }),
    (e: Error) => e instanceof TlabError && e.message === 'features.npy: row 7 contains NaN (column 2)',
  );
  await assert.rejects(
    logme(features, labels.subarray(0, 11), { names: { features: 'f.safetensors', labels: 'labels.npy' } }),
    /labels.npy has 11 rows but f.safetensors has 12/,
  );
  await assert.rejects(
    logme(features, labels, { numClasses: 4, names: { labels: 'labels.npy' } }),
    /labels.npy: class 3 of 0..3 has no samples/,
  );
  await assert.rejects(
    logme(matrix(3, 2, Float64Array.of(1, 2, 3, 4, 5, 6)), [0, 1, 2], { numClasses: 5 }),
    /3 samples are fewer than the 5 classes/,
  );
  await assert.rejects(logme(features, new Int32Array(12)), /needs at least 2 classes/);
  await assert.rejects(
    logme(
      features,
      Array.from(labels, (v) => v + 0.5),
    ),
    /labels must be integers/,
  );
  await assert.rejects(leep(features, labels), /row 0 has a negative probability/);
  await assert.rejects(
    () =>
      leep(
        map(features, (v) => Math.abs(v)),
        labels,
      ),
    /row 0 sums to .*not 1/,
  );
  await assert.rejects(
    scoreMetric('sfda', { features: limitsSet().perfect, labels: limitsSet().labels }),
    /within-class scatter is zero/,
  );
  await assert.rejects(scoreMetric('nope', { features, labels }), /unknown metric 'nope'/);
  await assert.rejects(scoreMetric('knn', { features, labels }, { kk: 3 }), /unknown option 'kk'/);
});
