/** Shared test helpers: a seeded PRNG and random host tensors. */
import type { HostTensor } from '../../src/engine/tensor.ts';
import { numel } from '../../src/engine/tensor.ts';
import { Rng } from '../../src/util/random.ts';

export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Standard normal samples (Box–Muller). */
export function randn(
  shape: number[],
  seed: number,
  dtype: 'float64' | 'float32' = 'float64',
  scale = 1,
): HostTensor {
  const r = rng(seed);
  const n = numel(shape);
  const data = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    data[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r()) * scale;
  }
  return { dtype, shape, data };
}

/** Uniform samples in [lo, hi). */
export function uniform(
  shape: number[],
  seed: number,
  lo: number,
  hi: number,
  dtype: 'float64' | 'float32' = 'float64',
): HostTensor {
  const r = rng(seed);
  const n = numel(shape);
  const data = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * r();
  return { dtype, shape, data };
}

export function int64(shape: number[], values: number[]): HostTensor {
  return { dtype: 'int64', shape, data: BigInt64Array.from(values.map((v) => BigInt(v))) };
}

export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let ref = 1e-30;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    ref = Math.max(ref, Math.abs(b[i]));
  }
  return diff / ref;
}

/** Norm-wise relative error ‖a − b‖₂ / ‖b‖₂. */
export function normRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 1e-300;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
