/**
 * Every estimator against DADApy itself (built from source and run by test/fixtures/geometry/
 * make_geometry_fixtures.py on the same points), scikit-learn's ARI/AMI and Kornblith et al.'s CKA functions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adpClustering } from '../../src/geometry/adp.ts';
import { cka } from '../../src/geometry/cka.ts';
import { computeKstar, knnDensity, pakDensity } from '../../src/geometry/density.ts';
import { grideMultiscale } from '../../src/geometry/gride.ts';
import { neighbourTable } from '../../src/geometry/neighbours.ts';
import { labelOverlap, neighbourhoodOverlap } from '../../src/geometry/overlap.ts';
import { adjustedMutualInformation, adjustedRandIndex } from '../../src/geometry/partitions.ts';
import { twoNN } from '../../src/geometry/twonn.ts';
import { asMatrix, close, loadReference } from './helpers.ts';

const ref = loadReference();

interface Case {
  x: number[][];
  maxk: number;
  indices?: number[][];
  distances?: number[];
  twonn: { fit: number; ml: number; scale: number };
  gride: { ids: number[]; errors: number[]; scales: number[] };
  id_used: { n1: number; id: number };
  knn_density: { k: number; log_den: number[]; error: number };
  adp: Record<
    string,
    {
      n_clusters: number;
      assignment: number[];
      centers: number[];
      saddles: number[][];
      halo: number[];
      cython_assignment: number[];
      ari?: number;
    }
  >;
  pak: { id: number; kstar: number[]; log_den: number[]; error: number[] };
  labels?: number[];
  label_overlap?: Record<string, number>;
}

for (const name of ['two_gaussians', 'gauss5_in_12', 'blobs3', 'mixed4']) {
  const c = ref[name] as Case;
  test(`DADApy fixture ${name}: neighbours, TwoNN, GRIDE, kNN/PAk densities, ADP, label overlap`, async () => {
    const x = asMatrix(c.x);
    const table = await neighbourTable(x, c.maxk);
    if (c.indices) {
      const w = c.maxk + 1;
      for (let i = 0; i < x.rows; i++)
        for (let k = 0; k <= c.maxk; k++)
          assert.equal(table.indices[i * w + k], c.indices[i][k], `neighbour ${k} of point ${i}`);
      for (let i = 0; i < x.rows; i++)
        for (const k of [1, 2])
          close(table.distances[i * w + k], c.distances![i * 2 + k - 1], 1e-10, `r${k}`);
    }
    const t = twoNN(table);
    close(t.fit, c.twonn.fit, 1e-8, 'TwoNN fit'); // DADApy fits with scipy's curve_fit
    close(t.ml, c.twonn.ml, 1e-12, 'TwoNN ML');
    close(t.scale, c.twonn.scale, 1e-12, 'TwoNN scale');

    const g = grideMultiscale(table, { rangeMax: Math.min(64, c.maxk) });
    assert.equal(g.length, c.gride.ids.length);
    g.forEach((s, i) => {
      close(s.id, c.gride.ids[i], 1e-9, `GRIDE n1=${s.n1}`);
      close(s.error, c.gride.errors[i], 1e-9, `GRIDE error n1=${s.n1}`);
      close(s.scale, c.gride.scales[i], 1e-12, `GRIDE scale n1=${s.n1}`);
    });

    const density = knnDensity(table, c.id_used.id, c.knn_density.k);
    for (const [i, v] of c.knn_density.log_den.entries())
      close(density.logDensity[i], v, 1e-9, `ln ρ of ${i}`);
    close(density.error[0], c.knn_density.error, 1e-15, 'kNN density error');

    for (const [z, e] of Object.entries(c.adp)) {
      const r = adpClustering(table, density, { z: Number(z) });
      assert.equal(r.clusters, e.n_clusters, `ADP Z=${z} clusters`);
      assert.deepEqual(Array.from(r.assignment), e.assignment, `ADP Z=${z} assignment`);
      assert.deepEqual(Array.from(r.assignment), e.cython_assignment, `ADP Z=${z} vs DADApy's Cython`);
      assert.deepEqual(r.centers, e.centers, `ADP Z=${z} centres`);
      for (const [i, row] of e.saddles.entries())
        for (const [j, v] of row.entries())
          close(r.saddleLogDensity[i * r.clusters + j], v, 1e-9, `saddle ${i},${j}`);
      const halo = adpClustering(table, density, { z: Number(z), halo: true });
      assert.deepEqual(Array.from(halo.assignment), e.halo, `ADP Z=${z} halo`);
      if (e.ari !== undefined) close(adjustedRandIndex(c.labels!, r.assignment), e.ari, 1e-12, 'ARI');
    }

    const kstar = computeKstar(table, c.pak.id);
    assert.deepEqual(Array.from(kstar), c.pak.kstar, 'k*');
    const pak = pakDensity(table, c.pak.id, { kstar });
    for (const [i, v] of c.pak.log_den.entries()) close(pak.logDensity[i], v, 1e-9, `PAk ln ρ of point ${i}`);
    for (const [i, v] of c.pak.error.entries()) close(pak.error[i], v, 1e-12, `PAk error of point ${i}`);

    if (c.label_overlap && c.labels) {
      const lo = c.label_overlap;
      close(
        labelOverlap(table, c.labels, { classFraction: 0.3 }).value,
        lo['0.3-weighted'],
        1e-12,
        'f=0.3 weighted',
      );
      close(
        labelOverlap(table, c.labels, { classFraction: 0.3, weighted: false }).value,
        lo['0.3-mean'],
        1e-12,
        'f=0.3 mean',
      );
      close(labelOverlap(table, c.labels, { classFraction: 0.1 }).value, lo['0.1-weighted'], 1e-12, 'f=0.1');
      close(labelOverlap(table, c.labels, { k: 5, weighted: false }).value, lo['k5-mean'], 1e-12, 'k=5');
    }
  });
}

test('DADApy neighbourhood overlap of X and X + noise (k = 10, 30)', async () => {
  const o = ref.overlap as { x: number[][]; y: number[][]; k10: number; k30: number };
  const a = await neighbourTable(asMatrix(o.x), 40);
  const b = await neighbourTable(asMatrix(o.y), 40);
  close(neighbourhoodOverlap(a, b, 10), o.k10, 1e-12, 'χ10');
  close(neighbourhoodOverlap(a, b, 30), o.k30, 1e-12, 'χ30');
});

test('ARI and AMI (four averages) match scikit-learn on random labelings', () => {
  for (const p of ref.partitions as Record<string, number[] & number>[]) {
    const u = p.u as unknown as number[];
    const v = p.v as unknown as number[];
    close(adjustedRandIndex(u, v), p.ari as number, 1e-12, `ARI n=${u.length}`);
    for (const m of ['arithmetic', 'max', 'min', 'geometric'] as const)
      close(adjustedMutualInformation(u, v, m), p[`ami_${m}`] as number, 1e-9, `AMI ${m} n=${u.length}`);
  }
});

test("CKA (linear, RBF at t = 1 and 0.5, debiased) matches Kornblith et al.'s functions", async () => {
  for (const c of ref.cka as Record<string, number & number[][]>[]) {
    const x = asMatrix(c.x as unknown as number[][]);
    const y = asMatrix(c.y as unknown as number[][]);
    close(await cka(x, y), c.linear as number, 1e-12, 'linear');
    close(await cka(x, y, { debiased: true }), c.linear_debiased as number, 1e-12, 'linear debiased');
    close(await cka(x, y, { kernel: 'rbf' }), c.rbf_1 as number, 1e-12, 'rbf t=1');
    close(await cka(x, y, { kernel: 'rbf', threshold: 0.5 }), c['rbf_0.5'] as number, 1e-12, 'rbf t=0.5');
    close(
      await cka(x, y, { kernel: 'rbf', debiased: true }),
      c.rbf_1_debiased as number,
      1e-12,
      'rbf debiased',
    );
  }
});
