/**
 * Multinomial logistic regression (src/linalg/logistic-regression.ts) on N=10000, D=1024 float32 features
 * against scikit-learn's lbfgs (bench/reference/logistic_sklearn.py, OpenBLAS with 2 threads) on the same data in
 * the same run, with the same C and stopping rule. `npm run bench -- logistic-regression [--n 10000 --d 1024
 * --classes 2 --C 1 --tol 1e-6 --max-iter 200]`. Last line: JSON, ratio = sklearn ms / ours (> 1: we are faster).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fitLogisticRegression, predictClasses } from '../src/linalg/logistic-regression.ts';
import { writeNpy } from '../src/metrics/io/npy.ts';
import { mulberry32 } from '../src/metrics/rng.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const N = Number(arg('n', '10000'));
const D = Number(arg('d', '1024'));
const K = Number(arg('classes', '2'));
const C = Number(arg('C', '1'));
const tol = Number(arg('tol', '1e-6'));
const maxIter = Number(arg('max-iter', '200'));

// standardised-looking features: class means apart along a few directions, noise with a decaying spectrum
const rng = mulberry32(7);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
const labels = Int32Array.from({ length: N }, (_, i) => i % K);
const means = Float64Array.from({ length: K * D }, (_, k) => (k % D < 32 ? 0.25 * gauss() : 0));
const x = new Float32Array(N * D);
for (let i = 0; i < N; i++)
  for (let j = 0; j < D; j++) x[i * D + j] = means[labels[i] * D + j] + gauss() * (1 + j / 64) ** -0.5;

// warm-up on a small slice, so V8 has optimised the kernels before the timing (as numpy's are compiled)
fitLogisticRegression(x.subarray(0, 500 * D), 500, D, labels.subarray(0, 500), { C, maxIter: 5 });
const t0 = performance.now();
const model = fitLogisticRegression(x, N, D, labels, { C, tol, maxIter });
const ms = performance.now() - t0;
const pred = predictClasses(model, x, N);
const acc = pred.reduce((s, p, i) => s + (p === labels[i] ? 1 : 0), 0) / N;

const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-logreg-'));
writeNpy(join(dir, 'features.npy'), [N, D], x);
writeNpy(join(dir, 'labels.npy'), [N], labels);
const py = spawnSync(
  '/usr/bin/python3',
  [join(import.meta.dirname, 'reference/logistic_sklearn.py'), dir, String(C), String(tol), String(maxIter)],
  { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2' } },
);
rmSync(dir, { recursive: true, force: true });
if (py.status !== 0) {
  console.error(py.stderr);
  process.exit(1);
}
const ref = JSON.parse(py.stdout.trim().split('\n').at(-1) as string) as {
  ms: number;
  iterations: number;
  train_accuracy: number;
};
console.log(`logistic regression N=${N} D=${D} classes=${K} C=${C} tol=${tol} (gradient of objective/n)`);
console.log(
  `ours:    ${ms.toFixed(0)} ms, ${model.iterations} iterations, converged ${model.converged}, train accuracy ${acc.toFixed(4)}`,
);
console.log(
  `sklearn: ${ref.ms.toFixed(0)} ms, ${ref.iterations} iterations, train accuracy ${ref.train_accuracy.toFixed(4)}`,
);
console.log(
  JSON.stringify({
    bench: 'logistic-regression',
    ours: Number(ms.toFixed(1)),
    reference: Number(ref.ms.toFixed(1)),
    unit: 'ms',
    ratio: Number((ref.ms / ms).toFixed(3)),
  }),
);
