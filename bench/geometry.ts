/**
 * TwoNN + GRIDE + ADP at N=10,000, D=1024 (the geometry pipeline on one layer: exact kNN, TwoNN, GRIDE at
 * doubling scales, kNN density at the n1=16 ID, ADP with Z=1.6) against the numpy/scipy/scikit-learn reference
 * (bench/reference/geometry_numpy.py: DADApy's own algorithms, sklearn's brute-force kNN) on the same data in the
 * same run, both with 2 threads. `npm run bench -- geometry [--n 10000 --d 1024 --maxk 64]`. Reports time and peak
 * RSS of each side; last line: JSON with the total times (ratio = reference / ours, > 1 means we are faster).
 */
process.env.TLAB_LINALG_THREADS ??= '2';

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adpClustering } from '../src/geometry/adp.ts';
import { knnDensity } from '../src/geometry/density.ts';
import { grideMultiscale } from '../src/geometry/gride.ts';
import { neighbourTable } from '../src/geometry/neighbours.ts';
import { twoNN } from '../src/geometry/twonn.ts';
import { matrix } from '../src/linalg/matrix.ts';
import { writeNpy } from '../src/metrics/io/npy.ts';
import { Rng } from '../src/util/random.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const N = Number(arg('n', '10000'));
const D = Number(arg('d', '1024'));
const MAXK = Number(arg('maxk', '64'));

// Hidden-state-like data: 8 clusters on a curved 12-dimensional manifold in R^D, plus small isotropic noise.
const rng = new Rng(12);
const d = 12;
const frame = Float64Array.from({ length: d * D }, () => rng.normal() / Math.sqrt(d));
const centres = Array.from({ length: 8 }, () => Float64Array.from({ length: d }, () => 3 * rng.normal()));
const x = new Float64Array(N * D);
const z = new Float64Array(d);
for (let i = 0; i < N; i++) {
  const c = centres[i % 8];
  for (let k = 0; k < d; k++) z[k] = c[k] + rng.normal();
  for (let j = 0; j < D; j++) {
    let s = 0.05 * rng.normal();
    for (let k = 0; k < d; k++) s += Math.sin(z[k] * 0.7 + k) * frame[k * D + j];
    x[i * D + j] = s;
  }
}
const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-geometry-'));
writeNpy(join(dir, 'x.npy'), [N, D], x);

// warm-up on a small problem: loads onnxruntime and compiles the ranking session outside the timings
await neighbourTable(matrix(800, D, x.slice(0, 800 * D)), 8, { jsMaxFlops: 0 });

const rssBefore = process.memoryUsage().rss;
let peak = rssBefore;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 20);
const t0 = performance.now();
const table = await neighbourTable(matrix(N, D, x), MAXK);
const t1 = performance.now();
const two = twoNN(table);
const t2 = performance.now();
const scales = grideMultiscale(table, { rangeMax: 64 });
const t3 = performance.now();
const density = knnDensity(table, scales[4].id, 16);
const clusters = adpClustering(table, density, { z: 1.6 }).clusters;
const t4 = performance.now();
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
const ours = {
  ms: { knn: t1 - t0, twonn: t2 - t1, gride: t3 - t2, 'density+adp': t4 - t3, total: t4 - t0 },
  twonn: two.fit,
  gride: scales.map((s) => s.id),
  clusters,
  peak_rss_mb: peak / 2 ** 20,
};
console.error(`ours: ${JSON.stringify(ours)}`);

const py = spawnSync(
  '/usr/bin/python3',
  [join(import.meta.dirname, 'reference/geometry_numpy.py'), join(dir, 'x.npy'), String(MAXK)],
  {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2', MKL_NUM_THREADS: '2' },
    maxBuffer: 1 << 26,
  },
);
rmSync(dir, { recursive: true, force: true });
if (py.status !== 0) {
  console.error(py.stderr);
  process.exit(1);
}
const ref = JSON.parse(py.stdout.trim().split('\n').at(-1) as string);
console.error(`reference: ${JSON.stringify(ref)}`);
const agree =
  Math.abs(ref.twonn - ours.twonn) < 1e-6 &&
  ref.gride.every((v: number, i: number) => Math.abs(v - ours.gride[i]) < 1e-5) &&
  ref.clusters === ours.clusters;
console.error(`same results (TwoNN, GRIDE profile, ADP clusters): ${agree}`);
for (const k of Object.keys(ours.ms) as (keyof typeof ours.ms)[])
  console.error(
    `${k.padEnd(12)} ours ${ours.ms[k].toFixed(0).padStart(7)} ms   reference ${ref.ms[k].toFixed(0).padStart(7)} ms`,
  );
console.error(
  `peak RSS     ours ${ours.peak_rss_mb.toFixed(0)} MB (process)   reference ${ref.peak_rss_mb.toFixed(0)} MB`,
);
console.log(
  JSON.stringify({
    bench: 'geometry',
    ours: Math.round(ours.ms.total),
    reference: Math.round(ref.ms.total),
    unit: 'ms',
    ratio: Number((ref.ms.total / ours.ms.total).toFixed(3)),
    peak_rss_mb: { ours: Math.round(ours.peak_rss_mb), reference: Math.round(ref.peak_rss_mb) },
    same_results: agree,
  }),
);
