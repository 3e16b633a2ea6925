/**
 * Wall time of every estimator at N=5000, D=768, C=10 against the numpy/scipy reference implementations
 * (bench/reference/metrics_numpy.py, OpenBLAS with 2 threads) on the same data in the same run.
 * `npm run bench -- metrics [--n 5000 --d 768 --c 10] [--only logme,hscore]`. Last line: JSON with the total
 * of all estimators and per-estimator ratios (reference / ours; > 1 means we are faster).
 */
// Both sides get 2 threads: numpy through OMP/OPENBLAS_NUM_THREADS below, onnxruntime through this (read when
// linalg creates its first session, so it must be set before any estimator runs).
process.env.TLAB_LINALG_THREADS ??= '2';

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matrix } from '../src/linalg/matrix.ts';
import { writeNpy } from '../src/metrics/io/npy.ts';
import { METRICS, scoreMetric } from '../src/metrics/registry.ts';
import { mulberry32 } from '../src/metrics/rng.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const N = Number(arg('n', '5000'));
const D = Number(arg('d', '768'));
const C = Number(arg('c', '10'));
const CS = 100;
const only = arg('only', '').split(',').filter(Boolean);
const names = Object.keys(METRICS).filter((m) => only.length === 0 || only.includes(m));

// Features like a real encoder's: class means plus noise with a power-law spectrum (PCA-80% keeps ~20 dims).
const rng = mulberry32(1);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
const y = BigInt64Array.from({ length: N }, (_, i) => BigInt(i % C));
const means = Float64Array.from({ length: C * D }, (_, k) => 0.6 * gauss() * ((k % D) + 1) ** -0.75);
const f = new Float64Array(N * D);
for (let i = 0; i < N; i++)
  for (let j = 0; j < D; j++) f[i * D + j] = means[Number(y[i]) * D + j] + gauss() * (j + 1) ** -0.75;
const probs = new Float64Array(N * CS);
for (let i = 0; i < N; i++) {
  let s = 0;
  for (let k = 0; k < CS; k++) {
    const v = Math.exp(gauss() + (k === (3 * Number(y[i])) % CS ? 2 : 0));
    probs[i * CS + k] = v;
    s += v;
  }
  for (let k = 0; k < CS; k++) probs[i * CS + k] /= s;
}
const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-metrics-'));
writeNpy(join(dir, 'features.npy'), [N, D], f);
writeNpy(join(dir, 'labels.npy'), [N], y);
writeNpy(join(dir, 'probs.npy'), [N, CS], probs);

const input = {
  features: matrix(N, D, f),
  labels: Int32Array.from(y, Number),
  sourceProbs: matrix(N, CS, probs),
};
// warm-up on a small problem: loads onnxruntime and creates its sessions outside the timings
const small = {
  features: matrix(200, 64, f.slice(0, 200 * 64)),
  labels: input.labels.slice(0, 200),
  sourceProbs: matrix(200, CS, probs.slice(0, 200 * CS)),
};
for (const m of names) await scoreMetric(m, small);

const ours: Record<string, { ms: number; score: number }> = {};
for (const m of names) {
  const t0 = performance.now();
  const score = await scoreMetric(m, input);
  ours[m] = { ms: performance.now() - t0, score };
  console.error(`ours ${m}: ${ours[m].ms.toFixed(0)} ms`);
}

const py = spawnSync(
  '/usr/bin/python3',
  [join(import.meta.dirname, 'reference/metrics_numpy.py'), dir, names.join(',')],
  {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2' },
    maxBuffer: 1 << 24,
  },
);
rmSync(dir, { recursive: true, force: true });
if (py.status !== 0) {
  console.error(py.stderr);
  process.exit(1);
}
const ref: Record<string, { ms: number; score: number }> = JSON.parse(
  py.stdout.trim().split('\n').at(-1) as string,
);

console.log(
  `transferability estimators, N=${N} D=${D} C=${C} (source classes ${CS}); onnxruntime with ${process.env.TLAB_LINALG_THREADS} threads, numpy reference with 2 threads`,
);
console.log(
  `${'metric'.padEnd(18)}${'ours ms'.padStart(10)}${'numpy ms'.padStart(10)}${'ratio'.padStart(8)}  score (ours / numpy)`,
);
let sumOurs = 0;
let sumRef = 0;
const ratios: Record<string, number> = {};
for (const m of names) {
  const o = ours[m];
  const r = ref[m];
  sumOurs += o.ms;
  sumRef += r.ms;
  ratios[m] = Number((r.ms / o.ms).toFixed(3));
  console.log(
    `${m.padEnd(18)}${o.ms.toFixed(0).padStart(10)}${r.ms.toFixed(0).padStart(10)}${(r.ms / o.ms).toFixed(2).padStart(8)}  ${o.score.toPrecision(10)} / ${r.score.toPrecision(10)}`,
  );
}
console.log(
  JSON.stringify({
    bench: 'metrics',
    ours: Number(sumOurs.toFixed(1)),
    reference: Number(sumRef.toFixed(1)),
    unit: 'ms',
    ratio: Number((sumRef / sumOurs).toFixed(3)),
    per_metric: ratios,
  }),
);
