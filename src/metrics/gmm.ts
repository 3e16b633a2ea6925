/**
 * Full-covariance Gaussian mixture by EM, following scikit-learn's GaussianMixture defaults (k-means init,
 * reg_covar 1e-6, tol 1e-3 on the mean log-likelihood, max_iter 100) so NLEEP matches its behaviour. The
 * k-means++ seeding uses our seeded RNG, so results are deterministic per seed (not equal to sklearn's).
 */

import { affineSquaredNorms, weightedScatter } from '../linalg/batched.ts';
import { cholesky } from '../linalg/cholesky.ts';
import type { Matrix } from '../linalg/matrix.ts';
import { mulberry32, type Rng } from './rng.ts';

export interface GmmOptions {
  seed?: number;
  maxIter?: number;
  tol?: number;
  regCovar?: number;
}

function sqDist(x: Float64Array, i: number, c: Float64Array, k: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const t = x[i * d + j] - c[k * d + j];
    s += t * t;
  }
  return s;
}

/** k-means++ seeding then Lloyd iterations; returns the final labels. */
export function kmeans(x: Matrix, k: number, rng: Rng, maxIter = 300, tol = 1e-4): Int32Array {
  const n = x.rows;
  const d = x.cols;
  const X = x.data;
  const centers = new Float64Array(k * d);
  const first = Math.floor(rng() * n);
  centers.set(X.subarray(first * d, (first + 1) * d), 0);
  const d2 = new Float64Array(n);
  for (let i = 0; i < n; i++) d2[i] = sqDist(X, i, centers, 0, d);
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) total += d2[i];
    let pick = n - 1;
    if (total > 0) {
      const r = rng() * total;
      let cum = 0;
      for (let i = 0; i < n; i++) {
        cum += d2[i];
        if (cum > r) {
          pick = i;
          break;
        }
      }
    } else pick = Math.floor(rng() * n);
    centers.set(X.subarray(pick * d, (pick + 1) * d), c * d);
    for (let i = 0; i < n; i++) d2[i] = Math.min(d2[i], sqDist(X, i, centers, c, d));
  }
  // tolerance relative to the mean per-column variance, as scikit-learn
  let meanVar = 0;
  for (let j = 0; j < d; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += X[i * d + j];
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (X[i * d + j] - m) ** 2;
    meanVar += v / n;
  }
  const threshold = (meanVar / d) * tol;
  const labels = new Int32Array(n);
  const assign = () => {
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bd = Infinity;
      for (let c = 0; c < k; c++) {
        const dist = sqDist(X, i, centers, c, d);
        if (dist < bd) {
          bd = dist;
          best = c;
        }
      }
      labels[i] = best;
    }
  };
  const next = new Float64Array(k * d);
  const count = new Int32Array(k);
  for (let it = 0; it < maxIter; it++) {
    assign();
    next.fill(0);
    count.fill(0);
    for (let i = 0; i < n; i++) {
      count[labels[i]]++;
      for (let j = 0; j < d; j++) next[labels[i] * d + j] += X[i * d + j];
    }
    let shift = 0;
    for (let c = 0; c < k; c++)
      for (let j = 0; j < d; j++) {
        const v = count[c] > 0 ? next[c * d + j] / count[c] : centers[c * d + j];
        shift += (v - centers[c * d + j]) ** 2;
        centers[c * d + j] = v;
      }
    if (shift <= threshold) break;
  }
  assign();
  return labels;
}

interface Params {
  weights: Float64Array;
  means: Float64Array;
  /** Per component, the inverse of the lower Cholesky factor of its covariance (row-major d×d, lower). */
  precChol: Float64Array;
  logDet: Float64Array; // Σ ln diag(precChol)
}

async function mStep(x: Matrix, resp: Float64Array, k: number, regCovar: number): Promise<Params> {
  const n = x.rows;
  const d = x.cols;
  const X = x.data;
  const nk = new Float64Array(k).fill(10 * 2 ** -52);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) nk[c] += resp[i * k + c];
  const means = new Float64Array(k * d);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < k; c++) {
      const r = resp[i * k + c];
      if (r === 0) continue;
      for (let j = 0; j < d; j++) means[c * d + j] += r * X[i * d + j];
    }
  for (let c = 0; c < k; c++) for (let j = 0; j < d; j++) means[c * d + j] /= nk[c];
  const scatter = await weightedScatter(x, means, resp, k);
  const precChol = new Float64Array(k * d * d);
  const logDet = new Float64Array(k);
  const cov = new Float64Array(d * d);
  for (let c = 0; c < k; c++) {
    for (let a = 0; a < d * d; a++) cov[a] = scatter[c * d * d + a] / nk[c];
    for (let a = 0; a < d; a++) cov[a * d + a] += regCovar;
    const L = cholesky({ rows: d, cols: d, data: cov }).data;
    // precChol = L⁻¹ (lower), so y = L⁻¹(x − μ)
    const P = precChol.subarray(c * d * d, (c + 1) * d * d);
    for (let col = 0; col < d; col++) {
      for (let i = col; i < d; i++) {
        let s = i === col ? 1 : 0;
        for (let q = col; q < i; q++) s -= L[i * d + q] * P[q * d + col];
        P[i * d + col] = s / L[i * d + i];
      }
    }
    let ld = 0;
    for (let i = 0; i < d; i++) ld += Math.log(P[i * d + i]);
    logDet[c] = ld;
  }
  const weights = nk.map((v) => v / n);
  return { weights, means, precChol, logDet };
}

/** E-step: fills log responsibilities, returns the mean log-likelihood. */
async function eStep(x: Matrix, p: Params, k: number, logResp: Float64Array): Promise<number> {
  const n = x.rows;
  const d = x.cols;
  // b_c = −P_c μ_c, so ‖x P_cᵀ + b_c‖² is the squared Mahalanobis distance
  const b = new Float64Array(k * d);
  for (let c = 0; c < k; c++)
    for (let r = 0; r < d; r++) {
      let s = 0;
      for (let j = 0; j <= r; j++) s += p.precChol[c * d * d + r * d + j] * p.means[c * d + j];
      b[c * d + r] = -s;
    }
  const q = await affineSquaredNorms(x, p.precChol, b, k);
  const lw = p.weights.map(Math.log);
  const c0 = d * Math.log(2 * Math.PI);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      const v = -0.5 * (c0 + q[o + c]) + p.logDet[c] + lw[c];
      logResp[o + c] = v;
      if (v > max) max = v;
    }
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.exp(logResp[o + c] - max);
    const lse = max + Math.log(s);
    for (let c = 0; c < k; c++) logResp[o + c] -= lse;
    total += lse;
  }
  return total / n;
}

export interface GmmResult {
  /** N×K posterior responsibilities. */
  responsibilities: Matrix;
  iterations: number;
  converged: boolean;
}

export async function fitGmm(x: Matrix, k: number, options: GmmOptions = {}): Promise<GmmResult> {
  const n = x.rows;
  const maxIter = options.maxIter ?? 100;
  const tol = options.tol ?? 1e-3;
  const regCovar = options.regCovar ?? 1e-6;
  const labels = kmeans(x, k, mulberry32(options.seed ?? 0));
  const resp = new Float64Array(n * k);
  for (let i = 0; i < n; i++) resp[i * k + labels[i]] = 1;
  let params = await mStep(x, resp, k, regCovar);
  const logResp = new Float64Array(n * k);
  let lower = -Infinity;
  let converged = false;
  let iterations = 0;
  for (let it = 1; it <= maxIter; it++) {
    iterations = it;
    const prev = lower;
    lower = await eStep(x, params, k, logResp);
    for (let i = 0; i < resp.length; i++) resp[i] = Math.exp(logResp[i]);
    params = await mStep(x, resp, k, regCovar);
    if (Math.abs(lower - prev) < tol) {
      converged = true;
      break;
    }
  }
  await eStep(x, params, k, logResp);
  const out = new Float64Array(n * k);
  for (let i = 0; i < out.length; i++) out[i] = Math.exp(logResp[i]);
  return { responsibilities: { rows: n, cols: k, data: out }, iterations, converged };
}
