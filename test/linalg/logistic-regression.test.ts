import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  binomialMeanObjective,
  type LogisticProblem,
  multinomialMeanObjective,
  multinomialScratch,
} from '../../src/linalg/logistic-objective.ts';
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

test('logistic objectives: value against a direct sum, gradient against central differences (odd n, K = 2..5)', () => {
  for (const [n, d, K, fitIntercept] of [
    [7, 3, 3, true],
    [9, 4, 4, false],
    [5, 2, 5, true],
    [11, 3, 2, true],
  ] as const) {
    const { x, y } = blobs(n, d, K, n + K);
    const p: LogisticProblem = { x, n, d, labels: y, classes: K, invC: 1 / 0.7, fitIntercept };
    const binary = K === 2;
    const size = binary ? d + 1 : K * (d + 1);
    const rng = new Rng(K);
    const theta = Float64Array.from({ length: size }, () => rng.next() - 0.5);
    if (!fitIntercept) theta.fill(0, K * d);
    const grad = new Float64Array(size);
    const scratch = multinomialScratch(K);
    const t4 = new Float64Array(4);
    const f = (th: Float64Array, g: Float64Array) =>
      binary ? binomialMeanObjective(p, th, g, t4) : multinomialMeanObjective(p, th, g, scratch);
    const value = f(theta, grad);
    // the direct objective: softmax cross-entropy of W x + b (binary: W₁ = w/2 = −W₀, b₁ = b/2 = −b₀)
    let direct = 0;
    let w2 = 0;
    const W = (k: number, j: number) => (binary ? (k === 1 ? 0.5 : -0.5) * theta[j] : theta[k * d + j]);
    const B = (k: number) =>
      !fitIntercept ? 0 : binary ? (k === 1 ? 0.5 : -0.5) * theta[d] : theta[K * d + k];
    for (let i = 0; i < n; i++) {
      const z = Array.from(
        { length: K },
        (_, k) =>
          B(k) + Array.from({ length: d }, (_, j) => W(k, j) * x[i * d + j]).reduce((a, b) => a + b, 0),
      );
      const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
      direct += lse - z[y[i]];
    }
    for (let k = 0; k < K; k++) for (let j = 0; j < d; j++) w2 += W(k, j) ** 2;
    direct = (direct + (w2 * 0.7 ** -1) / 2) / n;
    assert.ok(Math.abs(value - direct) < 1e-13, `n=${n} K=${K}: ${value} vs ${direct}`);
    const h = 1e-6;
    for (let j = 0; j < size; j++) {
      if (!fitIntercept && j >= (binary ? d : K * d)) {
        assert.equal(grad[j], 0);
        continue;
      }
      const plus = theta.slice();
      const minus = theta.slice();
      plus[j] += h;
      minus[j] -= h;
      const fd = (f(plus, new Float64Array(size)) - f(minus, new Float64Array(size))) / (2 * h);
      assert.ok(Math.abs(fd - grad[j]) < 1e-8, `n=${n} K=${K} ∂θ${j}: ${grad[j]} vs ${fd}`);
    }
  }
});
