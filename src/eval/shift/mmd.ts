/**
 * Kernel two-sample statistic between two feature sets X (m rows) and Y (n rows):
 *
 *   MMD²_u = 1/(m(m−1)) Σ_{i≠i'} k(x_i, x_i') + 1/(n(n−1)) Σ_{j≠j'} k(y_j, y_j') − 2/(mn) Σ_{i,j} k(x_i, y_j)
 *
 * with the RBF kernel k(a, b) = exp(−‖a − b‖² / (2σ²)). By default σ is the median heuristic: the median (numpy's,
 * the mean of the two middle values for an even count) of the Euclidean distances ‖z_i − z_j‖ over all pairs
 * i < j of the pooled (subsampled) sample. The p-value is a permutation test: the pooled rows are shuffled
 * `permutations` times into sets of m and n, and p = (1 + #{MMD²_perm ≥ MMD²}) / (1 + permutations).
 * All permutations cost one product K·A (A: the N×P indicator matrix of the permuted X sets), so onnxruntime's
 * Gemm does the O(N²P) work.
 */
import { type Matrix, matrix } from '../../linalg/matrix.ts';
import { matmul, outerGram } from '../../linalg/products.ts';
import { mulberry32, permutation } from '../../metrics/rng.ts';
import { TlabError } from '../../util/errors.ts';
import { checkPair, positiveIntSetting, subsampleRows } from './samples.ts';

export interface MmdOptions {
  /** Permutations of the test (0: no p-value); default 500. */
  permutations?: number;
  /** Rows kept per set (seeded subsample) because the cost is O((m+n)²); default 1000. */
  maxSamples?: number;
  /** Kernel width σ; default the median heuristic. */
  bandwidth?: number;
  seed?: number;
}

export interface MmdResult {
  mmd2: number;
  sigma: number;
  /** 'median' (heuristic) or 'fixed' (given). */
  bandwidth: 'median' | 'fixed';
  pValue: number | null;
  permutations: number;
  /** Rows used from each set. */
  m: number;
  n: number;
  subsampled: boolean;
}

/** Numpy's median of a Float64Array (sorted in place). */
function median(values: Float64Array): number {
  values.sort();
  const k = values.length;
  return k % 2 === 1 ? values[(k - 1) >> 1] : 0.5 * (values[k / 2 - 1] + values[k / 2]);
}

/** Pairwise squared distances of the rows of z (N×N, exact zeros on the diagonal, clamped at 0). */
async function squaredDistances(z: Matrix): Promise<Float64Array> {
  const g = await outerGram(z);
  const N = z.rows;
  const d = g.data;
  const norms = new Float64Array(N);
  for (let i = 0; i < N; i++) norms[i] = d[i * N + i];
  for (let i = 0; i < N; i++) {
    const r = i * N;
    for (let j = 0; j < N; j++) d[r + j] = i === j ? 0 : Math.max(0, norms[i] + norms[j] - 2 * d[r + j]);
  }
  return d;
}

export async function mmd2Rbf(x: Matrix, y: Matrix, options: MmdOptions = {}): Promise<MmdResult> {
  const what = 'MMD';
  const permutations = options.permutations ?? 500;
  const cap = options.maxSamples ?? 1000;
  if (!Number.isInteger(permutations) || permutations < 0)
    throw new TlabError(`${what}: permutations=${permutations} must be an integer ≥ 0`);
  positiveIntSetting(what, 'max_samples', cap);
  if (cap < 2) throw new TlabError(`${what}: max_samples=${cap} must be ≥ 2`);
  if (options.bandwidth !== undefined && !(options.bandwidth > 0 && Number.isFinite(options.bandwidth)))
    throw new TlabError(`${what}: bandwidth=${options.bandwidth} must be a finite number > 0`);
  checkPair(what, x, y, 2);
  const rng = mulberry32(options.seed ?? 0);
  const xs = subsampleRows(x, cap, rng);
  const ys = subsampleRows(y, cap, rng);
  const m = xs.rows;
  const n = ys.rows;
  const N = m + n;
  const z = matrix(N, x.cols);
  z.data.set(xs.data, 0);
  z.data.set(ys.data, m * x.cols);
  const k = await squaredDistances(z);
  let sigma = options.bandwidth ?? 0;
  if (options.bandwidth === undefined) {
    const dist = new Float64Array((N * (N - 1)) / 2);
    let at = 0;
    for (let i = 0; i < N; i++) for (let j = i + 1; j < N; j++) dist[at++] = Math.sqrt(k[i * N + j]);
    sigma = median(dist);
    if (!(sigma > 0))
      throw new TlabError(
        `${what}: the median pairwise distance of the pooled sample is 0 (most rows are duplicates); give a bandwidth`,
      );
  }
  const scale = -1 / (2 * sigma * sigma);
  for (let i = 0; i < k.length; i++) k[i] = Math.exp(k[i] * scale);
  // block sums: the diagonal of K is exactly 1
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  const rowSums = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const r = i * N;
    let s = 0;
    for (let j = 0; j < N; j++) s += k[r + j];
    rowSums[i] = s;
    let inX = 0;
    for (let j = 0; j < m; j++) inX += k[r + j];
    if (i < m) {
      sxx += inX;
      sxy += s - inX;
    } else syy += s - inX;
  }
  const total = sxx + syy + 2 * sxy;
  const statistic = (qxx: number, qxy: number, qyy: number) =>
    (qxx - m) / (m * (m - 1)) + (qyy - n) / (n * (n - 1)) - (2 * qxy) / (m * n);
  const mmd2 = statistic(sxx, sxy, syy);
  let pValue: number | null = null;
  if (permutations > 0) {
    // A[i, p] = 1 when pooled row i falls in the permuted X set p; q_p = a_pᵀ K a_p, t_p = a_pᵀ K 1
    const a = matrix(N, permutations);
    for (let p = 0; p < permutations; p++) {
      const perm = permutation(N, rng);
      for (let i = 0; i < m; i++) a.data[perm[i] * permutations + p] = 1;
    }
    const ka = await matmul(matrix(N, N, k), a);
    const q = new Float64Array(permutations);
    const t = new Float64Array(permutations);
    for (let i = 0; i < N; i++) {
      const r = i * permutations;
      for (let p = 0; p < permutations; p++)
        if (a.data[r + p] === 1) {
          q[p] += ka.data[r + p];
          t[p] += rowSums[i];
        }
    }
    const tolerance = 1e-12 * Math.max(1, Math.abs(mmd2));
    let atLeast = 0;
    for (let p = 0; p < permutations; p++) {
      const s = statistic(q[p], t[p] - q[p], total - 2 * t[p] + q[p]);
      if (s >= mmd2 - tolerance) atLeast++;
    }
    pValue = (1 + atLeast) / (1 + permutations);
  }
  return {
    mmd2,
    sigma,
    bandwidth: options.bandwidth === undefined ? 'median' : 'fixed',
    pValue,
    permutations,
    m,
    n,
    subsampled: m < x.rows || n < y.rows,
  };
}
