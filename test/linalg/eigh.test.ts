import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eigh, eighProject, eighTop, eigvalsh } from '../../src/linalg/eigh.ts';
import { fromRows, type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { applyQ, applyQt, tridiagonalize } from '../../src/linalg/tridiagonal.ts';

function symmetric(n: number, seed: number): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      const v = Math.sin(seed + 1.3 * i + 0.7 * j * j) + (i === j ? 0.1 * i : 0);
      m.data[i * n + j] = v;
      m.data[j * n + i] = v;
    }
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

test('eigh: A = V Λ Vᵀ and VᵀV = I for several sizes', async () => {
  for (const n of [1, 2, 3, 7, 40]) {
    const a = symmetric(n, n);
    const { values, vectors: v } = await eigh(a);
    for (let i = 1; i < n; i++) assert.ok(values[i] >= values[i - 1], 'ascending');
    const scale = maxAbs(values);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let recon = 0;
        let dot = 0;
        for (let k = 0; k < n; k++) {
          recon += v.data[i * n + k] * values[k] * v.data[j * n + k];
          dot += v.data[k * n + i] * v.data[k * n + j];
        }
        assert.ok(
          Math.abs(recon - a.data[i * n + j]) < 1e-12 * Math.max(1, scale),
          `recon n=${n} (${i},${j})`,
        );
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12, `orthogonality n=${n}`);
      }
  }
});

test('eigh: closed forms (diagonal, 2×2, repeated eigenvalues, rank one)', async () => {
  assert.deepEqual(
    Array.from(
      await eigvalsh(
        fromRows([
          [3, 0, 0],
          [0, -1, 0],
          [0, 0, 2],
        ]),
      ),
    ),
    [-1, 2, 3],
  );
  const two = await eigvalsh(
    fromRows([
      [2, 1],
      [1, 2],
    ]),
  );
  assert.ok(Math.abs(two[0] - 1) < 1e-15 && Math.abs(two[1] - 3) < 1e-15);
  // all-ones 5×5: eigenvalues 0 (×4) and 5
  const ones = matrix(5, 5, new Float64Array(25).fill(1));
  const vals = await eigvalsh(ones);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(vals[i]) < 1e-14);
  assert.ok(Math.abs(vals[4] - 5) < 1e-14);
  const top = await eighTop(ones, 1);
  assert.ok(Math.abs(top.values[0] - 5) < 1e-14);
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(Math.abs(top.vectors.data[i]) - 1 / Math.sqrt(5)) < 1e-14);
});

test('eighProject equals Vᵀ B; eighTop equals the last columns of eigh', async () => {
  const n = 30;
  const a = symmetric(n, 2);
  const b = matrix(n, 3);
  for (let i = 0; i < b.data.length; i++) b.data[i] = Math.cos(i * 0.37);
  const full = await eigh(a);
  const proj = await eighProject(a, b);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += full.vectors.data[k * n + i] * b.data[k * 3 + c];
      assert.ok(Math.abs(s - proj.projections.data[i * 3 + c]) < 1e-12);
    }
  const top = await eighTop(a, 4);
  for (let c = 0; c < 4; c++) {
    assert.ok(Math.abs(top.values[c] - full.values[n - 1 - c]) < 1e-12);
    let dot = 0;
    for (let k = 0; k < n; k++) dot += top.vectors.data[k * 4 + c] * full.vectors.data[k * n + (n - 1 - c)];
    assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-12, 'same eigenvector up to sign');
  }
});

test('tridiagonalize: Qᵀ A Q is tridiagonal and Q is orthogonal', async () => {
  const n = 12;
  const a = symmetric(n, 5);
  const tri = tridiagonalize(a);
  const eye = matrix(n, n);
  for (let i = 0; i < n; i++) eye.data[i * n + i] = 1;
  const q = await applyQ(tri, eye);
  const back = await applyQt(tri, q);
  for (let i = 0; i < n * n; i++) assert.ok(Math.abs(back.data[i] - eye.data[i]) < 1e-14);
  // T = Qᵀ A Q
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let t = 0;
      for (let k = 0; k < n; k++)
        for (let l = 0; l < n; l++) t += q.data[k * n + i] * a.data[k * n + l] * q.data[l * n + j];
      const expected = i === j ? tri.d[i] : i === j + 1 ? tri.e[j] : j === i + 1 ? tri.e[i] : 0;
      assert.ok(Math.abs(t - expected) < 1e-12, `T[${i}][${j}]`);
    }
});
