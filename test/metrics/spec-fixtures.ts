/** The RNG-free fixtures of spec §15.1 (metrics.md), built exactly as the spec defines them. */
import { type Matrix, matrix } from '../../src/linalg/matrix.ts';

export interface Fixture {
  features: Matrix;
  labels: Int32Array;
}

export function fixtureA(): Fixture {
  const n = 12;
  const d = 4;
  const f = matrix(n, d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    for (let j = 0; j < d; j++)
      f.data[i * d + j] = Math.sin(0.9 * (i + 1) * (j + 1) + 0.3 * j) + (j === y[i] ? 1.5 : 0);
  }
  return { features: f, labels: y };
}

export function fixtureB(): Fixture {
  const n = 6;
  const d = 10;
  const f = matrix(n, d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    const sgn = y[i] === 1 ? 1 : -1;
    for (let j = 0; j < d; j++)
      f.data[i * d + j] = Math.cos(0.3 + 0.9 * i * (1 + 0.25 * j) + 0.4 * j * j) + (j < 3 ? 0.8 * sgn : 0);
  }
  return { features: f, labels: y };
}

export function fixtureC(): Fixture {
  const n = 60;
  const d = 8;
  const f = matrix(n, d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 4;
    for (let j = 0; j < d; j++)
      f.data[i * d + j] = Math.sin(0.37 * (i + 1) * (j + 1)) + (j === y[i] ? 2.0 : 0);
  }
  return { features: f, labels: y };
}

/** Source-model probabilities for LEEP/NCE (Cs = 5): row softmax of the spec's logits. */
export function fixtureTheta(y: Int32Array): Matrix {
  const cs = 5;
  const m = matrix(y.length, cs);
  for (let i = 0; i < y.length; i++) {
    let max = -Infinity;
    const row = new Float64Array(cs);
    for (let k = 0; k < cs; k++) {
      row[k] = 2 * Math.cos(0.7 * i + 1.1 * k) + (k === (2 * y[i]) % 5 ? 1 : 0);
      max = Math.max(max, row[k]);
    }
    let s = 0;
    for (let k = 0; k < cs; k++) {
      row[k] = Math.exp(row[k] - max);
      s += row[k];
    }
    for (let k = 0; k < cs; k++) m.data[i * cs + k] = row[k] / s;
  }
  return m;
}

/** Limits set (N=1000, C=3): perfect one-hot features and pseudo-random 5-d features. */
export function limitsSet(): { labels: Int32Array; perfect: Matrix; random: Matrix } {
  const n = 1000;
  const y = new Int32Array(n);
  const perfect = matrix(n, 3);
  const random = matrix(n, 5);
  for (let i = 0; i < n; i++) {
    y[i] = (7 * i) % 3;
    perfect.data[i * 3 + y[i]] = 1;
    for (let j = 0; j < 5; j++) {
      const v = Math.sin(12.9898 * (i + 1) + 78.233 * (j + 1)) * 43758.5453;
      random.data[i * 5 + j] = v - Math.floor(v) - 0.5; // Python's % 1.0 is non-negative
    }
  }
  return { labels: y, perfect, random };
}
