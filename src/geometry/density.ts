/**
 * Local log-densities at every point, as DADApy computes them (normalised by N):
 *  - kNN: ln ρ_i = ln k − ln ω_d − d ln r_{i,k} − ln N, error 1/√k, k* = k everywhere;
 *  - k* (Rodriguez et al., JCTC 2018): per point the largest neighbourhood over which the density looks constant,
 *    by a likelihood-ratio test between the volumes of i's and its j-th neighbour's (j−1)-neighbourhoods
 *    (threshold the χ²₁ quantile at α, 23.928 for α = 1e-6);
 *  - PAk: the two-parameter likelihood ln ρ + a·l over the k* shells, maximised by damped Newton steps, error
 *    √((4k* + 2)/((k* − 1)k*)).
 * Volumes are handled in logs (d ln r), so high intrinsic dimensions do not overflow.
 */
import { TlabError } from '../util/errors.ts';
import type { NeighbourTable } from './neighbours.ts';
import { chiSquare1Isf, lnUnitBallVolume } from './special.ts';

export interface Density {
  /** ln ρ_i (normalised by N). */
  logDensity: Float64Array;
  /** Standard error of ln ρ_i. */
  error: Float64Array;
  /** Neighbourhood size behind each estimate (what ADP uses as each point's neighbourhood). */
  kstar: Int32Array;
}

function checkId(id: number, what: string): void {
  if (!(Number.isFinite(id) && id > 0))
    throw new TlabError(`${what}: the intrinsic dimension must be a positive number, got ${id}`);
}

/** kNN log-density with a fixed k (DADApy compute_density_kNN). */
export function knnDensity(table: NeighbourTable, id: number, k: number, name = 'features'): Density {
  checkId(id, 'knn density');
  if (!Number.isInteger(k) || k < 1 || k > table.maxk)
    throw new TlabError(
      `${name}: kNN density with k=${k} needs 1 <= k <= ${table.maxk} (the neighbours in the table)`,
    );
  const w = table.maxk + 1;
  const lnOmega = lnUnitBallVolume(id);
  const logN = Math.log(table.n);
  const logDensity = new Float64Array(table.n);
  for (let i = 0; i < table.n; i++) {
    const r = table.distances[i * w + k];
    if (!(r > 0))
      throw new TlabError(
        `${name}: point ${i} has its ${k}-th neighbour at distance 0 (duplicate rows); remove duplicates first`,
      );
    logDensity[i] = Math.log(k) - (lnOmega + id * Math.log(r)) - logN;
  }
  return {
    logDensity,
    error: new Float64Array(table.n).fill(1 / Math.sqrt(k)),
    kstar: new Int32Array(table.n).fill(k),
  };
}

/** k* of every point (DADApy compute_kstar: the test starts at j = 4 and stops before maxk). */
export function computeKstar(table: NeighbourTable, id: number, alpha = 1e-6): Int32Array {
  checkId(id, 'k*');
  if (!(alpha > 0 && alpha < 1)) throw new TlabError(`k*: alpha ${alpha} must be in (0, 1)`);
  const threshold = alpha === 1e-6 ? 23.928126976934827 : chiSquare1Isf(alpha);
  const w = table.maxk + 1;
  const maxk = table.maxk;
  const kstar = new Int32Array(table.n);
  const ln4 = Math.log(4);
  const lnOmega = lnUnitBallVolume(id);
  for (let i = 0; i < table.n; i++) {
    let j = 4;
    while (j < maxk) {
      const k = j - 1;
      const li = lnOmega + id * Math.log(table.distances[i * w + k]);
      const nb = table.indices[i * w + j];
      const lj = lnOmega + id * Math.log(table.distances[nb * w + k]);
      const hi = Math.max(li, lj);
      const lse = hi + Math.log(Math.exp(li - hi) + Math.exp(lj - hi)); // ln(V_i + V_j)
      const dL = -2 * k * (li + lj - 2 * lse + ln4);
      if (dL > threshold) break;
      j++;
    }
    kstar[i] = j - 1;
  }
  return kstar;
}

/**
 * PAk log-density (DADApy compute_density_PAk, optimised path). `kstar` defaults to computeKstar(alpha); the
 * largest k* must be below the table's maxk.
 */
export function pakDensity(
  table: NeighbourTable,
  id: number,
  options: { alpha?: number; kstar?: Int32Array } = {},
  name = 'features',
): Density {
  checkId(id, 'PAk density');
  const kstar = options.kstar ?? computeKstar(table, id, options.alpha);
  const w = table.maxk + 1;
  const n = table.n;
  const lnOmega = lnUnitBallVolume(id);
  const resolution = 1e-15; // numpy's finfo(float64).resolution
  const logDensity = new Float64Array(n);
  const error = new Float64Array(n);
  const v = new Float64Array(table.maxk + 1);
  for (let i = 0; i < n; i++) {
    const ks = kstar[i];
    if (ks < 2 || ks >= w)
      throw new TlabError(`${name}: k* of point ${i} is ${ks}; it must be in 2..${table.maxk}`);
    error[i] = Math.sqrt((4 * ks + 2) / (ks * (ks - 1)));
    const rk = table.distances[i * w + ks];
    if (!(rk > 0))
      throw new TlabError(`${name}: point ${i} has zero neighbour distances; remove duplicates first`);
    // Shell volumes ω (r_l^d − r_{l−1}^d), in logs, capped at e^300.
    let tiny = false;
    for (let l = 0; l < ks; l++) {
      const r = table.distances[i * w + l];
      const r1 = table.distances[i * w + l + 1];
      let ratio = r / r1;
      if (Math.abs(ratio - 1) < resolution) ratio -= 10 * resolution;
      let exponent = id * Math.log(r1) + Math.log(1 - ratio ** id);
      if (exponent > 300) exponent = 300;
      v[l] = Math.exp(lnOmega + exponent);
      if (v[l] < 1e-300) tiny = true;
    }
    const f0 = Math.log(ks) - (lnOmega + id * Math.log(rk));
    logDensity[i] = (tiny ? f0 : maximiseLikelihood(f0, ks, v)) - Math.log(n);
  }
  return { logDensity, error, kstar: Int32Array.from(kstar) };
}

/**
 * Maximises L(F, a) = Σ_{l=1..k} (F + a l) − v_l e^(F + a l) from (F0, 0): steps of 0.1·H⁻¹g with |ΔF| ≤ 0.1|F0|,
 * a fixed-point update where the Hessian is singular, until max(|g_F/F|, |g_a/a|) < 1e-3 (DADApy's _nrmaxl).
 */
function maximiseLikelihood(f0: number, k: number, v: Float64Array): number {
  const eps = 2 ** -52;
  let f = f0;
  let a = 0;
  const stepMax = 0.1 * Math.abs(f);
  let gf = 0;
  let ga = 0;
  let h00 = 0;
  let h01 = 0;
  let h11 = 0;
  const gradients = () => {
    gf = k;
    ga = ((k + 1) * k) / 2;
    h00 = 0;
    h01 = 0;
    h11 = 0;
    for (let j = 0; j < k; j++) {
      const l = j + 1;
      const t = v[j] * Math.exp(f + a * l);
      gf -= t;
      ga -= l * t;
      h00 -= t;
      h01 -= l * t;
      h11 -= l * l * t;
    }
  };
  gradients();
  let det = h00 * h11 - h01 * h01;
  let func = 100;
  for (let iter = 0; func > 1e-3 && iter < 10000; iter++) {
    if (det < eps) {
      f = (-a * k * (k + 1) * 0.5 - (gf - k)) / k;
      a = (-f * k - (gf - k)) / (k * (k + 1) * 0.5);
    } else {
      const inv = 1 / det;
      const df = inv * h11 * gf - inv * h01 * ga;
      const da = -inv * h01 * gf + inv * h00 * ga;
      let lr = 0.1;
      if (Math.abs(lr * df) > stepMax) lr = Math.abs(stepMax / df);
      f -= lr * df;
      a -= lr * da;
    }
    gradients();
    det = h00 * h11 - h01 * h01;
    func =
      Math.abs(a) <= eps || Math.abs(f) <= eps
        ? Math.max(Math.abs(gf), Math.abs(ga))
        : Math.max(Math.abs(gf / f), Math.abs(ga / a));
  }
  return f;
}
