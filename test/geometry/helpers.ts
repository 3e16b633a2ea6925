/** Shared test data for the geometry tests: fixture loading and seeded synthetic manifolds. */
import { readFileSync } from 'node:fs';
import { fromRows, type Matrix, matrix } from '../../src/linalg/matrix.ts';
import type { Rng } from '../../src/util/random.ts';

export function loadReference(): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL('../fixtures/geometry/reference.json', import.meta.url), 'utf8'));
}

export const asMatrix = (rows: number[][]): Matrix => fromRows(rows);

export function close(actual: number, expected: number, tol: number, what: string): void {
  if (!(Math.abs(actual - expected) <= tol))
    throw new Error(`${what}: ${actual} vs ${expected} (|Δ| = ${Math.abs(actual - expected)} > ${tol})`);
}

export function gaussian(rng: Rng, n: number, d: number): Matrix {
  const m = matrix(n, d);
  for (let i = 0; i < m.data.length; i++) m.data[i] = rng.normal();
  return m;
}

/** A random D×d matrix with orthonormal columns (Gram–Schmidt of Gaussian columns). */
export function orthonormalFrame(rng: Rng, big: number, small: number): Float64Array {
  const q = new Float64Array(big * small); // column-major: column c at c*big
  for (let c = 0; c < small; c++) {
    for (let r = 0; r < big; r++) q[c * big + r] = rng.normal();
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let r = 0; r < big; r++) dot += q[c * big + r] * q[p * big + r];
      for (let r = 0; r < big; r++) q[c * big + r] -= dot * q[p * big + r];
    }
    let norm = 0;
    for (let r = 0; r < big; r++) norm += q[c * big + r] ** 2;
    norm = Math.sqrt(norm);
    for (let r = 0; r < big; r++) q[c * big + r] /= norm;
  }
  return q;
}

/** Rows of z (n×d) mapped into R^big by an orthonormal frame. */
export function embed(z: Matrix, rng: Rng, big: number): Matrix {
  const q = orthonormalFrame(rng, big, z.cols);
  const out = matrix(z.rows, big);
  for (let i = 0; i < z.rows; i++)
    for (let c = 0; c < z.cols; c++) {
      const v = z.data[i * z.cols + c];
      for (let r = 0; r < big; r++) out.data[i * big + r] += v * q[c * big + r];
    }
  return out;
}

/** Uniform points on the unit sphere S^d (normalised Gaussians in R^(d+1)). */
export function sphere(rng: Rng, n: number, d: number): Matrix {
  const m = gaussian(rng, n, d + 1);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j <= d; j++) s += m.data[i * (d + 1) + j] ** 2;
    s = Math.sqrt(s);
    for (let j = 0; j <= d; j++) m.data[i * (d + 1) + j] /= s;
  }
  return m;
}

export function cube(rng: Rng, n: number, d: number): Matrix {
  const m = matrix(n, d);
  for (let i = 0; i < m.data.length; i++) m.data[i] = rng.next();
  return m;
}

/** c·X·Q + b with a random orthogonal Q (D×D) and a random shift b. */
export function similarity(x: Matrix, rng: Rng, c: number): Matrix {
  const d = x.cols;
  const q = orthonormalFrame(rng, d, d);
  const b = Float64Array.from({ length: d }, () => 5 * rng.normal());
  const out = matrix(x.rows, d);
  for (let i = 0; i < x.rows; i++)
    for (let col = 0; col < d; col++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += x.data[i * d + k] * q[col * d + k];
      out.data[i * d + col] = c * s + b[col];
    }
  return out;
}
