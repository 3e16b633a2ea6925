import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cholesky, logdetSpd, solveSpd } from '../../src/linalg/cholesky.ts';
import { eigvalsh } from '../../src/linalg/eigh.ts';
import { knn, pairwiseSquaredDistances } from '../../src/linalg/knn.ts';
import { fromRows, type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { pca } from '../../src/linalg/pca.ts';
import { gram, matmul, outerGram, setOrtMinFlops } from '../../src/linalg/products.ts';

function data(n: number, d: number, seed = 1): Matrix {
  const m = matrix(n, d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++)
      m.data[i * d + j] = Math.sin(seed + 0.37 * (i + 1) * (j + 1)) * (1 + j) ** -0.5;
  return m;
}

test('cholesky: L Lᵀ = A, solve and log-det against closed forms', async () => {
  const a = fromRows([
    [4, 2, 0.4],
    [2, 5, 1],
    [0.4, 1, 3],
  ]);
  const l = cholesky(a);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += l.data[i * 3 + k] * l.data[j * 3 + k];
      assert.ok(Math.abs(s - a.data[i * 3 + j]) < 1e-14);
    }
  const det = 4 * (5 * 3 - 1) - 2 * (2 * 3 - 0.4) + 0.4 * (2 * 1 - 5 * 0.4);
  assert.ok(Math.abs(logdetSpd(a) - Math.log(det)) < 1e-14);
  const ev = await eigvalsh(a);
  assert.ok(Math.abs(logdetSpd(a) - ev.reduce((s, v) => s + Math.log(v), 0)) < 1e-13);
  const x = solveSpd(a, fromRows([[1], [2], [3]]));
  for (let i = 0; i < 3; i++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += a.data[i * 3 + k] * x.data[k];
    assert.ok(Math.abs(s - (i + 1)) < 1e-14);
  }
  assert.throws(
    () =>
      cholesky(
        fromRows([
          [1, 2],
          [2, 1],
        ]),
      ),
    /not positive definite/,
  );
});

test('products: JS and onnxruntime paths agree', async () => {
  const f = data(50, 20);
  const js = { g: await gram(f), k: await outerGram(f), m: await matmul(f, data(20, 7, 2)) };
  const prev = setOrtMinFlops(0);
  try {
    const ort = { g: await gram(f), k: await outerGram(f), m: await matmul(f, data(20, 7, 2)) };
    for (const key of ['g', 'k', 'm'] as const)
      for (let i = 0; i < js[key].data.length; i++)
        assert.ok(Math.abs(js[key].data[i] - ort[key].data[i]) < 1e-12);
  } finally {
    setOrtMinFlops(prev);
  }
});

test('pca: orthonormal components, variances from the eigenvalues, both Gram sides agree up to sign', async () => {
  for (const [n, d] of [
    [40, 6],
    [6, 10],
  ]) {
    const x = data(n, d);
    const r = await pca(x, 3);
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += r.components.data[j * 3 + a] * r.components.data[j * 3 + b];
        assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-12, `orthonormal ${n}x${d}`);
      }
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let i = 0; i < n; i++) v += r.scores.data[i * 3 + c] ** 2;
      assert.ok(Math.abs(v / (n - 1) - r.explainedVariance[c]) < 1e-12);
    }
  }
  const frac = await pca(data(40, 6), { varianceFraction: 0.8 });
  let cum = 0;
  for (let c = 0; c < frac.explainedVariance.length - 1; c++) cum += frac.explainedVariance[c];
  assert.ok(cum / frac.totalVariance <= 0.8);
});

test('knn: exact neighbours with (distance, index) order, same through onnxruntime', async () => {
  const x = data(60, 5);
  const all = pairwiseSquaredDistances(x);
  const small = await knn(x, 3);
  for (let i = 0; i < 60; i++) {
    const order = Array.from({ length: 60 }, (_, j) => j)
      .filter((j) => j !== i)
      .sort((a, b) => all[i * 60 + a] - all[i * 60 + b] || a - b);
    assert.deepEqual(Array.from(small.indices.subarray(i * 3, i * 3 + 3)), order.slice(0, 3));
  }
  const viaOrt = await knn(x, 3, { ortMinFlops: 0, blockRows: 16 });
  assert.deepEqual(Array.from(viaOrt.indices), Array.from(small.indices));
  // duplicates: ties go to the lower index
  const dup = fromRows([
    [0, 0],
    [1, 1],
    [0, 0],
    [5, 5],
  ]);
  assert.deepEqual(Array.from((await knn(dup, 1)).indices), [2, 0, 0, 1]);
});
