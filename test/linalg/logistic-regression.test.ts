import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  fitLogisticRegression,
  type LogisticModel,
  predictClasses,
  predictProba,
} from '../../src/linalg/logistic-regression.ts';
import { TlabError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/random.ts';

// Optima from scikit-learn 1.2 LogisticRegression(multi_class='multinomial', newton-cg, tol=1e-12), cross-checked
// there against its lbfgs solver and a numpy gradient: test/fixtures/linalg/make_logistic.py.
interface FixtureCase {
  name: string;
  n: number;
  d: number;
  classes: number;
  C: number;
  fit_intercept: boolean;
  float32: boolean;
  x: number[];
  labels: number[];
  weights: number[];
  bias: number[];
  objective: number;
  n_test: number;
  x_test: number[];
  proba_test: number[];
  classes_test: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/linalg/logistic.json', import.meta.url), 'utf8'),
) as { cases: FixtureCase[] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Σ cross-entropy + ‖W‖²/(2C), written out directly (not through the module's fused pass). */
function objective(model: LogisticModel, x: Float64Array, labels: Int32Array, C: number): number {
  const n = labels.length;
  const p = predictProba(model, x, n);
  let loss = 0;
  for (let i = 0; i < n; i++) loss -= Math.log(p[i * model.classes + labels[i]]);
  let w2 = 0;
  for (const w of model.weights) w2 += w * w;
  return loss + w2 / (2 * C);
}

for (const c of fixture.cases) {
  test(`logistic regression matches scikit-learn: ${c.name}`, () => {
    const x = c.float32 ? Float32Array.from(c.x) : Float64Array.from(c.x);
    const labels = Int32Array.from(c.labels);
    const model = fitLogisticRegression(x, c.n, c.d, labels, {
      C: c.C,
      fitIntercept: c.fit_intercept,
      tol: 1e-10,
      maxIter: 5000,
    });
    assert.equal(model.classes, c.classes);
    assert.equal(model.dim, c.d);
    assert.ok(model.converged, `converged after ${model.iterations} iterations`);
    const scale = Math.max(1, ...c.weights.map(Math.abs));
    assert.ok(
      maxAbsDiff(model.weights, c.weights) < 1e-6 * scale,
      `weights ${maxAbsDiff(model.weights, c.weights)}`,
    );
    assert.ok(maxAbsDiff(model.bias, c.bias) < 1e-6 * scale, `bias ${maxAbsDiff(model.bias, c.bias)}`);
    if (!c.fit_intercept) assert.deepEqual(Array.from(model.bias), new Array(c.classes).fill(0));
    const xt = Float64Array.from(c.x_test);
    const proba = predictProba(model, xt, c.n_test);
    assert.ok(maxAbsDiff(proba, c.proba_test) < 1e-6, `proba ${maxAbsDiff(proba, c.proba_test)}`);
    assert.deepEqual(Array.from(predictClasses(model, xt, c.n_test)), c.classes_test);
    const f = objective(model, Float64Array.from(c.x), labels, c.C);
    assert.ok(
      Math.abs(f - c.objective) < 1e-9 * Math.max(1, c.objective),
      `objective ${f} vs ${c.objective}`,
    );
  });
}

function blobs(
  n: number,
  d: number,
  k: number,
  seed: number,
  spread = 1,
): { x: Float64Array; y: Int32Array } {
  const rng = new Rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const centres = Array.from({ length: k * d }, () => spread * normal());
  const x = new Float64Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % k;
    for (let j = 0; j < d; j++) x[i * d + j] = centres[y[i] * d + j] + normal();
  }
  return { x, y };
}

test('logistic regression: separable data stay finite, are fitted exactly, and grow with C', () => {
  const n = 40;
  const x = new Float64Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i < n / 2 ? 0 : 1;
    x[2 * i] = (y[i] === 0 ? -2 : 2) + 0.1 * Math.sin(i);
    x[2 * i + 1] = Math.cos(3 * i);
  }
  let prevNorm = 0;
  for (const C of [0.1, 10, 1000]) {
    const m = fitLogisticRegression(x, n, 2, y, { C, tol: 1e-8, maxIter: 2000 });
    assert.ok(m.converged, `C=${C} converged`);
    for (const w of m.weights) assert.ok(Number.isFinite(w));
    assert.deepEqual(Array.from(predictClasses(m, x, n)), Array.from(y));
    const norm = Math.hypot(...m.weights);
    assert.ok(norm > prevNorm, `‖W‖ grows with C (${norm} after ${prevNorm})`);
    prevNorm = norm;
  }
});

test('logistic regression: probabilities sum to one; row order and float32 input do not change the fit', () => {
  const { x, y } = blobs(90, 4, 3, 7);
  const m = fitLogisticRegression(x, 90, 4, y, { tol: 1e-10, maxIter: 1000 });
  const p = predictProba(m, x, 90);
  for (let i = 0; i < 90; i++) assert.ok(Math.abs(p[3 * i] + p[3 * i + 1] + p[3 * i + 2] - 1) < 1e-12);
  // the multinomial optimum from zero keeps Σ_k W_k = 0 and Σ_k b_k = 0 (gradients sum to zero over classes)
  for (let j = 0; j < 4; j++) assert.ok(Math.abs(m.weights[j] + m.weights[4 + j] + m.weights[8 + j]) < 1e-9);
  const order = Array.from({ length: 90 }, (_, i) => (i * 37) % 90);
  const xp = new Float64Array(90 * 4);
  const yp = new Int32Array(90);
  order.forEach((src, i) => {
    xp.set(x.subarray(src * 4, src * 4 + 4), i * 4);
    yp[i] = y[src];
  });
  const mp = fitLogisticRegression(xp, 90, 4, yp, { tol: 1e-10, maxIter: 1000 });
  assert.ok(maxAbsDiff(m.weights, mp.weights) < 1e-7);
  const x32 = Float32Array.from(x);
  const m32 = fitLogisticRegression(x32, 90, 4, y, { tol: 1e-10, maxIter: 1000 });
  const m64 = fitLogisticRegression(Float64Array.from(x32), 90, 4, y, { tol: 1e-10, maxIter: 1000 });
  assert.deepEqual(m32, m64);
});

test('logistic regression: the iteration cap is reported as not converged', () => {
  const { x, y } = blobs(200, 10, 4, 3, 0.5);
  const m = fitLogisticRegression(x, 200, 10, y, { maxIter: 2, tol: 1e-12 });
  assert.equal(m.iterations, 2);
  assert.equal(m.converged, false);
});

test('logistic regression: bad input gives one clear error each', () => {
  const { x, y } = blobs(12, 2, 2, 1);
  const fails = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof TlabError && pattern.test(e.message));
  fails(
    () => fitLogisticRegression(x, 12, 2, new Int32Array(12)),
    /all 12 rows have label 0; at least two classes/,
  );
  fails(
    () =>
      fitLogisticRegression(
        x,
        12,
        2,
        Int32Array.from(y, (v) => v * 2),
      ),
    /class 1 of 0\.\.2 has no rows/,
  );
  fails(
    () =>
      fitLogisticRegression(
        x,
        12,
        2,
        Int32Array.from(y, (v, i) => (i === 3 ? -1 : v)),
      ),
    /labels\[3\]=-1/,
  );
  fails(() => fitLogisticRegression(x, 12, 2, y.subarray(0, 11)), /labels has 11 entries but x has 12 rows/);
  fails(() => fitLogisticRegression(x, 12, 3, y), /x has 24 values but n×d = 12×3 needs 36/);
  const bad = x.slice();
  bad[5] = Number.NaN;
  fails(() => fitLogisticRegression(bad, 12, 2, y), /row 2 contains NaN \(column 1\)/);
  fails(() => fitLogisticRegression(x, 12, 2, y, { C: 0 }), /C=0 must be a finite number > 0/);
  fails(() => fitLogisticRegression(x, 12, 2, y, { maxIter: 0 }), /maxIter=0 must be an integer ≥ 1/);
  fails(() => fitLogisticRegression(x, 12, 2, y, { tol: -1 }), /tol=-1 must be ≥ 0/);
  fails(() => fitLogisticRegression(x, 0, 2, new Int32Array(0)), /n=0 must be an integer ≥ 1/);
  const m = fitLogisticRegression(x, 12, 2, y);
  fails(() => predictProba(m, new Float64Array(5), 2), /predictProba: x has 5 values but n×d = 2×2 needs 4/);
  fails(
    () => predictClasses(m, Float64Array.of(1, Number.POSITIVE_INFINITY), 1),
    /predictClasses: x: row 0 contains an infinite value/,
  );
});
