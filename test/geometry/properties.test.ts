/**
 * Statistical and invariance properties: ID estimates on synthetic manifolds inside the reference's seed
 * bands (≈4σ over 20 seeds), similarity invariance of IDs and overlaps, CKA's invariances and its non-invariance
 * to general linear maps, planted duplicates, clustering of blobs, and the float32-ranked neighbour search
 * against the exact one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cka } from '../../src/geometry/cka.ts';
import { grideAt, grideMultiscale } from '../../src/geometry/gride.ts';
import { neighbourTable } from '../../src/geometry/neighbours.ts';
import { labelOverlap, neighbourhoodOverlap } from '../../src/geometry/overlap.ts';
import { adjustedRandIndex } from '../../src/geometry/partitions.ts';
import { analysePoints } from '../../src/geometry/pipeline.ts';
import { twoNN } from '../../src/geometry/twonn.ts';
import { type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { Rng } from '../../src/util/random.ts';
import { close, cube, embed, gaussian, similarity, sphere } from './helpers.ts';

function inBand(v: number, lo: number, hi: number, what: string): void {
  assert.ok(v >= lo && v <= hi, `${what} = ${v.toFixed(3)}, expected in [${lo}, ${hi}]`);
}

test('ID bands: S² and a 2-D cube (N=1000), S⁵ and a 5-D Gaussian (N=2000), embedded in R⁶⁴', async () => {
  const rng = new Rng(7);
  const s2 = await neighbourTable(embed(sphere(rng, 1000, 2), rng, 64), 64);
  inBand(twoNN(s2).id, 1.6, 2.4, 'TwoNN S²');
  inBand(grideAt(grideMultiscale(s2), 16).id, 1.85, 2.15, 'GRIDE(16) S²');
  const c2 = await neighbourTable(embed(cube(rng, 1000, 2), rng, 64), 8);
  inBand(twoNN(c2).id, 1.6, 2.4, 'TwoNN 2-D cube');
  const s5 = await neighbourTable(embed(sphere(rng, 2000, 5), rng, 64), 8);
  inBand(twoNN(s5).id, 4.4, 5.6, 'TwoNN S⁵');
  const g5 = await neighbourTable(embed(gaussian(rng, 2000, 5), rng, 64), 64);
  inBand(twoNN(g5).id, 4.4, 5.6, 'TwoNN 5-D Gaussian');
  inBand(grideAt(grideMultiscale(g5), 16).id, 4.7, 5.2, 'GRIDE(16) 5-D Gaussian');
  // d = 10: the finite-N underestimate, inside the reference's 0.8·d ≤ ID ≤ 1.05·d band
  const g10 = await neighbourTable(embed(gaussian(rng, 1000, 10), rng, 64), 4);
  inBand(twoNN(g10).ml, 8, 10.5, 'TwoNN ML 10-D Gaussian');
});

test('IDs and overlaps are invariant to rotation, isotropic scaling, translation and zero padding', async () => {
  const rng = new Rng(11);
  const x = embed(gaussian(rng, 600, 4), rng, 12);
  const moved = similarity(x, rng, 3.7);
  const padded = matrix(x.rows, x.cols + 5);
  for (let i = 0; i < x.rows; i++)
    padded.data.set(x.data.subarray(i * x.cols, (i + 1) * x.cols), i * padded.cols);
  const a = await neighbourTable(x, 64);
  const b = await neighbourTable(moved, 64);
  const c = await neighbourTable(padded, 64);
  for (const t of [b, c]) {
    close(twoNN(t).fit, twoNN(a).fit, 1e-9 * twoNN(a).fit, 'TwoNN');
    const ga = grideMultiscale(a);
    for (const [i, s] of grideMultiscale(t).entries()) close(s.id, ga[i].id, 1e-6, `GRIDE n1=${s.n1}`);
    assert.equal(neighbourhoodOverlap(a, t, 30), 1);
  }
  // independent data share about k/(N−1) neighbours
  const other = await neighbourTable(gaussian(rng, 600, 12), 30);
  const chance = 30 / 599;
  const chi = neighbourhoodOverlap(a, other, 30);
  assert.ok(Math.abs(chi - chance) < 0.2 * chance, `χ30 of independent data ${chi} vs k/(N−1) = ${chance}`);
  // anisotropic scaling changes neighbourhoods
  const stretched = matrix(
    x.rows,
    x.cols,
    x.data.map((v, i) => v * (1 + (i % x.cols))),
  );
  assert.ok(neighbourhoodOverlap(a, await neighbourTable(stretched, 30), 30) < 0.9);
});

test('CKA is 1 under orthogonal maps, isotropic scaling and translation, but not under a general linear map', async () => {
  const rng = new Rng(51);
  const x = gaussian(rng, 200, 20);
  const moved = similarity(x, rng, 2.5);
  const general = matrix(200, 20);
  const a = Float64Array.from({ length: 400 }, () => rng.normal());
  for (let i = 0; i < 200; i++)
    for (let j = 0; j < 20; j++) {
      let s = 0;
      for (let k = 0; k < 20; k++) s += x.data[i * 20 + k] * a[k * 20 + j];
      general.data[i * 20 + j] = s;
    }
  for (const kernel of ['linear', 'rbf'] as const) {
    close(await cka(x, moved, { kernel }), 1, 1e-10, `${kernel} CKA(X, cXQ + b)`);
    close(await cka(x, moved, { kernel, debiased: true }), 1, 1e-10, `debiased ${kernel} CKA(X, cXQ + b)`);
    const v = await cka(x, general, { kernel });
    assert.ok(v < 0.97 && v > 0.3, `${kernel} CKA(X, XA) = ${v} should be clearly below 1`);
  }
  // the plain estimator is biased upward for p ≫ n; the debiased one is near 0 for independent data
  const p = gaussian(rng, 50, 1000);
  const q = gaussian(rng, 50, 1000);
  assert.ok((await cka(p, q)) > 0.8);
  assert.ok(Math.abs(await cka(p, q, { debiased: true })) < 0.1);
});

test('planted duplicates: the pipeline drops them and gives the ID of the de-duplicated data', async () => {
  const rng = new Rng(5);
  const x = embed(gaussian(rng, 1000, 5), rng, 16);
  const dup = matrix(1050, 16);
  dup.data.set(x.data);
  for (let r = 0; r < 50; r++) dup.data.set(x.data.subarray(r * 13 * 16, (r * 13 + 1) * 16), (1000 + r) * 16);
  const clean = await analysePoints(x, {}, { idOnly: true });
  const planted = await analysePoints(dup, {}, { idOnly: true });
  assert.equal(planted.duplicates, 50);
  assert.equal(planted.n, 1000);
  close(planted.twonn.fit, clean.twonn.fit, 1e-12, 'TwoNN');
  for (const [i, s] of planted.gride.entries()) close(s.id, clean.gride[i].id, 1e-12, `GRIDE n1=${s.n1}`);
  // without de-duplication TwoNN refuses the zero distances
  await assert.rejects(async () => twoNN(await neighbourTable(dup, 4)), /distance 0 \(a duplicate row\)/);
});

test('ADP pipeline: three separated blobs give 3 clusters (ARI 1 against the blob, label overlap 1); one Gaussian gives 1', async () => {
  const rng = new Rng(31);
  const blobs = matrix(1200, 5);
  const y = new Int32Array(1200);
  const centres = Array.from({ length: 3 }, () => Array.from({ length: 5 }, () => 8 * rng.normal()));
  for (let i = 0; i < 1200; i++) {
    y[i] = Math.floor(i / 400);
    for (let j = 0; j < 5; j++) blobs.data[i * 5 + j] = centres[y[i]][j] + rng.normal();
  }
  const r = await analysePoints(blobs, { blob: y });
  assert.equal(r.clusters, 3);
  assert.ok(r.labels!.blob.ari >= 0.99, `ARI ${r.labels!.blob.ari}`);
  assert.equal(r.labels!.blob.labelOverlap, 1);
  const perm = Int32Array.from(y, (v) => (v + 1) % 3);
  assert.equal(adjustedRandIndex(y, perm), 1);
  const single = await analysePoints(gaussian(rng, 400, 5), {});
  assert.equal(single.clusters, 1);
  // label overlap of shuffled labels sits near chance (1/3 weighted)
  const shuffled = rng.shuffle(Array.from(y));
  const t = await neighbourTable(blobs, 120);
  const chance = labelOverlap(t, shuffled, { classFraction: 0.3 }).value;
  assert.ok(Math.abs(chance - 1 / 3) < 0.05, `shuffled label overlap ${chance}`);
});

test('the float32-ranked neighbour search returns the exact table', async () => {
  const rng = new Rng(3);
  const x: Matrix = embed(gaussian(rng, 1500, 6), rng, 40);
  for (let i = 0; i < x.data.length; i++) x.data[i] += 100; // far from the origin: centring keeps the digits
  const stats = { rescanned: -1 };
  const fast = await neighbourTable(x, 20, { jsMaxFlops: 0 }, stats);
  const exact = await neighbourTable(x, 20, { jsMaxFlops: Infinity });
  assert.deepEqual(fast.indices, exact.indices);
  for (let i = 0; i < fast.distances.length; i++)
    close(fast.distances[i], exact.distances[i], 1e-10 * (1 + exact.distances[i]), `distance ${i}`);
  assert.ok(stats.rescanned >= 0 && stats.rescanned < 15, `rows rescanned exactly: ${stats.rescanned}`);
});
