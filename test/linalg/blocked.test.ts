// The blocked kernels (Cholesky, Householder tridiagonalisation, symmetric matrix-vector product, trailing
// update, batched mixture kernels) against the unblocked JS implementations and closed forms, through both the
// JS and the onnxruntime paths (setOrtMinFlops 0 / Infinity).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { affineSquaredNorms, weightedScatter } from '../../src/linalg/batched.ts';
import {
  cholesky,
  choleskyBlocked,
  solveCholesky,
  solveLower,
  solveUpperT,
} from '../../src/linalg/cholesky.ts';
import { applyRotations, type Rotations, tridiagonalQL } from '../../src/linalg/eigh.ts';
import { type GroupSums, groupedRowPasses } from '../../src/linalg/grouped.ts';
import { type Matrix, matrix } from '../../src/linalg/matrix.ts';
import { gram, groupSums, setOrtMinFlops, trailingUpdate } from '../../src/linalg/products.ts';
import { withScratch } from '../../src/linalg/scratch.ts';
import {
  applyQ,
  applyQt,
  symvLower,
  type Tridiagonal,
  tridiagonalize,
  tridiagonalizeBlocked,
} from '../../src/linalg/tridiagonal.ts';
import { setWasmEnabled, wasmKernels } from '../../src/linalg/wasm.ts';
import { mulberry32 } from '../../src/metrics/rng.ts';

function random(rows: number, cols: number, seed: number): Matrix {
  const rng = mulberry32(seed);
  return matrix(
    rows,
    cols,
    Float64Array.from({ length: rows * cols }, () => rng() - 0.5),
  );
}

/** A symmetric positive-definite matrix with a spread of eigenvalues: Fᵀ F / N + 0.01 I. */
async function spd(n: number, seed: number): Promise<Matrix> {
  const g = await gram(random(3 * n, n, seed));
  for (let i = 0; i < n * n; i++) g.data[i] /= 3 * n;
  for (let i = 0; i < n; i++) g.data[i * n + i] += 0.01;
  return g;
}

/** Runs `fn` with onnxruntime products on and off, and with the WebAssembly kernels on and off. */
async function bothPaths(fn: () => Promise<void>): Promise<void> {
  for (const [flops, wasm] of [
    [0, true],
    [Infinity, false],
    [0, false],
  ] as const) {
    const prev = setOrtMinFlops(flops);
    const prevWasm = setWasmEnabled(wasm);
    try {
      await fn();
    } finally {
      setOrtMinFlops(prev);
      setWasmEnabled(prevWasm);
    }
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('choleskyBlocked equals cholesky (uneven last block, JS and onnxruntime updates)', async () => {
  const a = await spd(45, 1);
  const ref = cholesky(a);
  await bothPaths(async () => {
    for (const block of [1, 8, 16, 45, 64]) {
      const l = await choleskyBlocked(a, block);
      assert.ok(maxDiff(l.data, ref.data) < 1e-13, `block ${block}`);
    }
  });
  const bad = matrix(3, 3, Float64Array.of(1, 2, 0, 2, 1, 0, 0, 0, 1));
  await assert.rejects(choleskyBlocked(bad, 2), /not positive definite \(pivot 1/);
});

test('symvLower: S v from the lower triangle only, at every offset', () => {
  const m = 23;
  const t = random(m, m, 2).data;
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) t[i * m + j] = Number.NaN; // upper never read
  const v = random(m, 1, 3).data;
  const y = new Float64Array(m);
  for (const o of [0, 1, 5, 19, 22]) {
    symvLower(t, m, o, v, y);
    for (let r = 0; r < m - o; r++) {
      let s = 0;
      for (let c = 0; c < m - o; c++) {
        const [i, j] = r >= c ? [r, c] : [c, r];
        s += t[(o + i) * m + o + j] * v[c];
      }
      assert.ok(Math.abs(s - y[r]) < 1e-13, `offset ${o} row ${r}`);
    }
  }
});

test('trailingUpdate: T[s:, s:] − X Yᵀ, same through onnxruntime', async () => {
  const m = 30;
  const s = 7;
  const k = 5;
  const t = random(m, m, 4).data;
  const x = random(m - s, k, 5).data;
  const y = random(m - s, k, 6).data;
  const out = new Float64Array(m * m);
  await bothPaths(async () => {
    const z = await trailingUpdate(t, m, s, x, y, k, out);
    for (let i = 0; i < m - s; i++)
      for (let j = 0; j < m - s; j++) {
        let acc = t[(s + i) * m + s + j];
        for (let q = 0; q < k; q++) acc -= x[i * k + q] * y[j * k + q];
        assert.ok(Math.abs(z[i * (m - s) + j] - acc) < 1e-13);
      }
  });
});

function eigenvalues(tri: Tridiagonal): Float64Array {
  const d = tri.d.slice();
  tridiagonalQL(d, tri.e);
  return d.sort();
}

test('tridiagonalizeBlocked: same spectrum as tridiagonalize, Qᵀ A Q tridiagonal, Q orthogonal', async () => {
  const n = 41;
  const a = random(n, n, 7);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a.data[j * n + i] = a.data[i * n + j];
  const ref = eigenvalues(tridiagonalize(a));
  await bothPaths(async () => {
    for (const block of [1, 4, 13]) {
      const tri = await tridiagonalizeBlocked(a, block);
      assert.ok(maxDiff(eigenvalues(tri), ref) < 1e-12, `block ${block} eigenvalues`);
      const eye = matrix(n, n);
      for (let i = 0; i < n; i++) eye.data[i * n + i] = 1;
      const q = (await applyQ(tri, eye)).data;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let t = 0;
          let o = 0;
          for (let k = 0; k < n; k++) {
            o += q[k * n + i] * q[k * n + j];
            for (let l = 0; l < n; l++) t += q[k * n + i] * a.data[k * n + l] * q[l * n + j];
          }
          const want = i === j ? tri.d[i] : i === j + 1 ? tri.e[j] : j === i + 1 ? tri.e[i] : 0;
          assert.ok(Math.abs(t - want) < 1e-12, `block ${block}: T[${i}][${j}]`);
          assert.ok(Math.abs(o - (i === j ? 1 : 0)) < 1e-13, `block ${block}: QᵀQ`);
        }
    }
  });
});

test('batched mixture kernels: affine squared norms and weighted scatter, JS and onnxruntime agree', async () => {
  const n = 60;
  const d = 4;
  const k = 3;
  const x = random(n, d, 8);
  const a = random(k * d, d, 9).data;
  const b = random(k, d, 10).data;
  const means = random(k, d, 11).data;
  const r = Float64Array.from(random(n, k, 12).data, (v) => v + 0.5);
  const results: Float64Array[][] = [];
  await bothPaths(async () => {
    results.push([await affineSquaredNorms(x, a, b, k), await weightedScatter(x, means, r, k)]);
  });
  const [ort, js] = results;
  assert.ok(maxDiff(ort[0], js[0]) < 1e-12 && maxDiff(ort[1], js[1]) < 1e-12);
  // one entry of each by its definition
  let norm = 0;
  for (let p = 0; p < d; p++) {
    let yv = b[1 * d + p];
    for (let j = 0; j < d; j++) yv += x.data[5 * d + j] * a[1 * d * d + p * d + j];
    norm += yv * yv;
  }
  assert.ok(Math.abs(js[0][5 * k + 1] - norm) < 1e-12);
  let s = 0;
  for (let i = 0; i < n; i++)
    s += r[i * k + 2] * (x.data[i * d] - means[2 * d]) * (x.data[i * d + 3] - means[2 * d + 3]);
  assert.ok(
    Math.abs(js[1][2 * d * d + 0 * d + 3] - s) < 1e-12 && Math.abs(js[1][2 * d * d + 3 * d] - s) < 1e-12,
  );
});

test('WebAssembly kernels equal their JS twins on random data (symv at every offset, dot, axpy2)', async () => {
  const m = 37; // odd sizes exercise the scalar tails
  const k = await wasmKernels((m * m + 4 * m) * 8);
  assert.ok(k, 'WebAssembly SIMD and wabt are available on Node 20');
  const mem = new Float64Array(k.memory.buffer);
  const t = mem.subarray(0, m * m);
  t.set(random(m, m, 13).data);
  const v = mem.subarray(m * m, m * m + m);
  v.set(random(m, 1, 14).data);
  const y = mem.subarray(m * m + m, m * m + 2 * m);
  const want = new Float64Array(m);
  for (let o = 0; o < m; o++) {
    k.symv_lower(0, m, o, m * m * 8, (m * m + m) * 8);
    symvLower(t, m, o, v, want);
    assert.ok(maxDiff(y.subarray(0, m - o), want.subarray(0, m - o)) < 1e-13, `symv offset ${o}`);
  }
  const x1 = mem.subarray(m * m + 2 * m, m * m + 3 * m);
  const x2 = mem.subarray(m * m + 3 * m, m * m + 4 * m);
  x1.set(random(m, 1, 15).data);
  x2.set(random(m, 1, 16).data);
  for (const n of [0, 1, 2, m]) {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += x1[i] * v[i];
    assert.ok(Math.abs(k.dot((m * m + 2 * m) * 8, m * m * 8, n) - dot) < 1e-13, `dot n=${n}`);
    const before = Float64Array.from(y);
    k.axpy2((m * m + m) * 8, (m * m + 2 * m) * 8, 0.3, (m * m + 3 * m) * 8, -1.7, n);
    for (let i = 0; i < m; i++) {
      const expect = i < n ? before[i] - (0.3 * x1[i] - 1.7 * x2[i]) : before[i];
      assert.ok(Math.abs(y[i] - expect) < 1e-14, `axpy2 n=${n} i=${i}`);
    }
  }
});

test('rotation and reflector kernels: WebAssembly equals JS (even and odd widths); forward then back is identity', async () => {
  const n = 19;
  const rng = mulberry32(17);
  const count = 200;
  const rot: Rotations = {
    count,
    index: Int32Array.from({ length: count }, () => Math.floor(rng() * (n - 1))),
    c: new Float64Array(count),
    s: new Float64Array(count),
  };
  for (let r = 0; r < count; r++) {
    const angle = 2 * Math.PI * rng();
    rot.c[r] = Math.cos(angle);
    rot.s[r] = Math.sin(angle);
  }
  const a = random(n, n, 18);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a.data[j * n + i] = a.data[i * n + j];
  const tri = tridiagonalize(a);
  for (const m of [1, 4, 5]) {
    const x = random(n, m, 19 + m).data;
    const out: Float64Array[][] = [];
    for (const wasm of [true, false]) {
      const prev = setWasmEnabled(wasm);
      try {
        const fwd = x.slice();
        await applyRotations(fwd, m, rot, true);
        const back = fwd.slice();
        await applyRotations(back, m, rot, false);
        assert.ok(maxDiff(back, x) < 1e-13, `rotations undone, m=${m} wasm=${wasm}`);
        const b = matrix(n, m, x);
        const qt = await applyQt(tri, b);
        assert.ok(maxDiff((await applyQ(tri, qt)).data, x) < 1e-13, `Q Qᵀ = I, m=${m} wasm=${wasm}`);
        out.push([fwd, qt.data]);
      } finally {
        setWasmEnabled(prev);
      }
    }
    assert.ok(maxDiff(out[0][0], out[1][0]) < 1e-14, `rotations m=${m}`);
    assert.ok(maxDiff(out[0][1], out[1][1]) < 1e-13, `reflectors m=${m}`);
  }
});

test('groupSums: onnxruntime and JS agree with the definition', async () => {
  const n = 40;
  const d = 6;
  const g = 3;
  const f = random(n, d, 30);
  const group = Int32Array.from({ length: n }, (_, i) => (i * 7) % g);
  const w = Float64Array.from(random(n, 1, 31).data, (v) => v + 0.5);
  const sums = new Float64Array(g * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) sums[group[i] * d + j] += w[i] * f.data[i * d + j];
  await bothPaths(async () => {
    assert.ok(maxDiff(await groupSums(f, group, g, w), sums) < 1e-13);
  });
});

test('solveCholesky equals the two substitutions and solves A X = B (WebAssembly on and off)', async () => {
  const n = 27;
  const a = await spd(n, 40);
  const l = cholesky(a);
  const b = random(n, 3, 41);
  const want = solveUpperT(l, solveLower(l, b));
  await bothPaths(async () => {
    const x = await solveCholesky(l, b);
    assert.ok(maxDiff(x.data, want.data) < 1e-10);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a.data[i * n + k] * x.data[k * 3 + c];
        assert.ok(Math.abs(s - b.data[i * 3 + c]) < 1e-9, `A X = B at (${i}, ${c})`);
      }
  });
});

test('withScratch: buffers of the asked length, never shared by interleaved callers, reused afterwards', async () => {
  let first: ArrayBufferLike | undefined;
  await withScratch(100, async (a) => {
    first = a.buffer;
    a.fill(1);
    await withScratch(50, async (b) => {
      assert.equal(b.length, 50);
      assert.notEqual(b.buffer, a.buffer, 'a buffer in use is not lent twice');
      b.fill(2);
      await new Promise((r) => setTimeout(r, 1));
    });
    assert.ok(a.every((v) => v === 1));
  });
  await withScratch(80, (c) => {
    assert.equal(c.length, 80);
    assert.equal(c.buffer, first, 'the smallest idle buffer that fits is reused');
  });
});

test('groupedRowPasses: group sums, row sums and minima, then row·weight dots (WebAssembly and JS, odd widths)', async () => {
  for (const m of [1, 7, 8]) {
    const n = 23;
    const groups = 4;
    const x = random(n, m, 50 + m);
    const group = Int32Array.from({ length: n }, (_, i) => (i * 3) % groups);
    const results: { seen: GroupSums; dots: Float64Array }[] = [];
    for (const wasm of [true, false]) {
      const prev = setWasmEnabled(wasm);
      try {
        let seen: GroupSums | undefined;
        const dots = await groupedRowPasses(x, group, groups, (s) => {
          seen = s;
          return Float64Array.from(s.sums, (v) => 2 * v);
        });
        results.push({ seen: seen as GroupSums, dots });
      } finally {
        setWasmEnabled(prev);
      }
    }
    const [a, b] = results;
    assert.ok(maxDiff(a.seen.sums, b.seen.sums) < 1e-14 && maxDiff(a.seen.rowSums, b.seen.rowSums) < 1e-14);
    assert.deepEqual(Array.from(a.seen.rowMins), Array.from(b.seen.rowMins));
    assert.ok(maxDiff(a.dots, b.dots) < 1e-13, `dots m=${m}`);
    for (let i = 0; i < n; i++) {
      let s = 0;
      let min = 0;
      let d = 0;
      for (let j = 0; j < m; j++) {
        s += x.data[i * m + j];
        min = Math.min(min, x.data[i * m + j]);
        d += x.data[i * m + j] * 2 * b.seen.sums[group[i] * m + j];
      }
      assert.ok(Math.abs(a.seen.rowSums[i] - s) < 1e-14 && a.seen.rowMins[i] === min);
      assert.ok(Math.abs(a.dots[i] - d) < 1e-13, `row ${i}`);
    }
  }
  const bad = matrix(2, 3, Float64Array.of(0.5, Number.NaN, 0.5, 1, 0, 0));
  await groupedRowPasses(bad, Int32Array.of(0, 1), 2, (s) => {
    assert.ok(Number.isNaN(s.rowMins[0]) && s.rowMins[1] === 0, 'NaN propagates to the row minimum');
    return new Float64Array(6);
  });
});
