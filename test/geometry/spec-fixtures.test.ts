/** The deterministic tiny fixtures of the geometry reference (no random generator): exact to 1e-9. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cka } from '../../src/geometry/cka.ts';
import { knnDensity } from '../../src/geometry/density.ts';
import { grideMultiscale } from '../../src/geometry/gride.ts';
import { type NeighbourTable, neighbourTable, tableFromIndices } from '../../src/geometry/neighbours.ts';
import { labelOverlap, neighbourhoodOverlap, pointOverlaps } from '../../src/geometry/overlap.ts';
import { adjustedMutualInformation, adjustedRandIndex } from '../../src/geometry/partitions.ts';
import { twoNN, twoNNRatios } from '../../src/geometry/twonn.ts';
import { asMatrix, close } from './helpers.ts';

test('T1 TwoNN on points of a line: μ, ML 1.3447626966725421, fit 1.6166093270106436, GRIDE(1,2)', async () => {
  const x = asMatrix([0, 1, 3, 7, 15, 31, 32, 34].map((v) => [v]));
  const t = await neighbourTable(x, 4);
  assert.deepEqual(Array.from(twoNNRatios(t)), [3, 2, 1.5, 1.5, 1.5, 3, 2, 1.5]);
  const r = twoNN(t);
  close(r.ml, 1.3447626966725421, 1e-12, 'ML');
  close(r.fit, 1.6166093270106436, 1e-12, 'fit (closed form)');
  assert.equal(r.discarded, 1); // n_eff = floor(0.9 · 8) = 7
  close(
    grideMultiscale(t, { rangeMax: 2 })[0].id,
    1.3447627008,
    1e-7,
    'GRIDE(1,2) = TwoNN ML to the bisection tolerance',
  );
});

test('T2 lattice ties: TwoNN-ML 24.0098 (μ = 1 makes ln μ = 0), GRIDE(n1=2, n2=4) = 2.0481860962905634', async () => {
  const x = asMatrix([
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
    [2, 0],
    [2, 1],
    [0, 2],
    [1, 2],
    [2, 2],
    [3.5, 0.5],
    [0.5, 3.5],
    [3, 3],
  ]);
  const t = await neighbourTable(x, 4);
  close(twoNN(t).ml, 24.0098, 1e-4, 'TwoNN ML');
  const g = grideMultiscale(t, { rangeMax: 4 });
  assert.deepEqual(
    g.map((s) => [s.n1, s.n2]),
    [
      [1, 2],
      [2, 4],
    ],
  );
  close(g[1].id, 2.0481860962905634, 1e-9, 'GRIDE(2,4)');
});

test('T3 neighbourhood overlap on explicit index tables: χ1 = 0, χ2 per point [1, .5, .5, .5], mean 0.625', () => {
  const a = tableFromIndices(Int32Array.from([0, 1, 2, 3, 1, 0, 2, 3, 2, 1, 3, 0, 3, 2, 1, 0]), 4);
  const b = tableFromIndices(Int32Array.from([0, 2, 1, 3, 1, 3, 2, 0, 2, 0, 1, 3, 3, 0, 2, 1]), 4);
  assert.equal(neighbourhoodOverlap(a, b, 1), 0);
  assert.deepEqual(Array.from(pointOverlaps(a, b, 2)), [1, 0.5, 0.5, 0.5]);
  assert.equal(neighbourhoodOverlap(a, b, 2), 0.625);
  assert.equal(neighbourhoodOverlap(a, a, 3), 1);
});

test('T4 label overlap: per point 0.5, 1, 1, 1, 0.5, 0.5; unweighted 0.75, weighted 0.6875; class_fraction 0.5 the same', () => {
  const t = tableFromIndices(Int32Array.from([0, 1, 4, 1, 0, 2, 2, 3, 0, 3, 2, 1, 4, 0, 5, 5, 4, 1]), 6);
  const y = [0, 0, 0, 0, 1, 1];
  const plain = labelOverlap(t, y, { k: 2, weighted: false });
  assert.deepEqual(Array.from(plain.points), [0.5, 1, 1, 1, 0.5, 0.5]);
  close(plain.value, 0.75, 1e-15, 'unweighted');
  close(labelOverlap(t, y, { k: 2 }).value, 0.6875, 1e-15, 'weighted');
  close(labelOverlap(t, y, { classFraction: 0.5, weighted: false }).value, 0.75, 1e-15, 'f=0.5 unweighted');
  close(labelOverlap(t, y, { classFraction: 0.5 }).value, 0.6875, 1e-15, 'f=0.5 weighted');
});

test('T5 kNN log-density: d=2, k=1, N=4, r1 = 0.5 → ln 1 − ln(π·0.25) − ln 4 = −1.1447298858494002', () => {
  const table: NeighbourTable = {
    n: 4,
    maxk: 1,
    indices: Int32Array.from([0, 1, 1, 0, 2, 3, 3, 2]),
    distances: Float64Array.from([0, 0.5, 0, 0.5, 0, 0.5, 0, 0.5]),
  };
  const d = knnDensity(table, 2, 1);
  for (const v of d.logDensity) close(v, -1.1447298858494002, 1e-12, 'ln ρ');
  assert.deepEqual(Array.from(d.error), [1, 1, 1, 1]);
});

test('T6 CKA: linear 0.5984389575203665 (both forms), debiased 0.049236596391733084, RBF(t=1) 0.5377467887424976', async () => {
  const x = asMatrix([
    [1, 0],
    [0, 1],
    [1, 1],
    [2, 0.5],
    [-1, 2],
  ]);
  const y = asMatrix([[1], [2], [0], [3], [-2]]);
  close(await cka(x, y), 0.5984389575203665, 1e-12, 'linear (feature form)');
  // a wide copy forces the Gram form: zero columns change no inner product
  const wide = asMatrix(
    [0, 1, 2, 3, 4].map((i) => [x.data[2 * i], x.data[2 * i + 1], ...new Array(20).fill(0)]),
  );
  close(await cka(wide, y), 0.5984389575203665, 1e-12, 'linear (Gram form)');
  close(await cka(x, y, { debiased: true }), 0.049236596391733084, 1e-12, 'debiased');
  close(await cka(x, y, { kernel: 'rbf' }), 0.5377467887424976, 1e-12, 'RBF t=1');
  close(await cka(x, x), 1, 1e-14, 'CKA(X, X)');
});

test('ARI / AMI reference pairs (scikit-learn 1.2.1 values)', () => {
  const cases: [number[], number[], number, number, number][] = [
    [[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2], 0.2424242424, 0.2987924582, 0.2250422832],
    [[0, 0, 1, 1], [1, 1, 0, 0], 1, 1, 1],
    [[0, 0, 1, 1], [0, 1, 0, 1], -0.5, -0.5, -0.5],
    [[0, 0, 0, 0], [0, 1, 2, 3], 0, 0, 0],
    [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1], 0.4444444444, 0.6153846154, 0.4444444444],
    [[0, 0, 0, 0], [0, 0, 0, 0], 1, 1, 1],
  ];
  for (const [u, v, ari, ami, amiMax] of cases) {
    close(adjustedRandIndex(u, v), ari, 1e-10, `ARI ${u} / ${v}`);
    close(adjustedMutualInformation(u, v), ami, 1e-10, `AMI ${u} / ${v}`);
    close(adjustedMutualInformation(u, v, 'max'), amiMax, 1e-10, `AMI(max) ${u} / ${v}`);
    close(adjustedRandIndex(v, u), ari, 1e-10, 'ARI is symmetric');
  }
});
