/**
 * PARC (Bolya et al., NeurIPS 2021): 100 · Spearman between the upper triangles of the feature dissimilarity
 * 1 − corr(rows of standardised F) and the label dissimilarity. For single-label data the label side takes two
 * values (same class / different class), so Spearman reduces to a point-biserial correlation of the feature
 * ranks: the two groups are sorted separately and merged once, which gives average ranks for ties without sorting
 * (value, group) pairs.
 *
 * As dbolya/parc's methods.py, features always go through PCA when pcaDims is set, also when D ≤ pcaDims: the
 * PCA then only centres and rotates, but PARC is not invariant to that (rows are centred across columns after
 * standardisation). Components follow scikit-learn's svd_flip signs. Differences from the reference, on purpose:
 * the PCA is exact (its randomized PCA with iterated_power=1 is exact only when the data's rank is at most
 * pcaDims + 10), and k = min(pcaDims, D, N − 1), where the reference asks for min(pcaDims, N) components, which
 * scikit-learn refuses when D is smaller and which for N ≤ pcaDims includes a zero-variance component whose
 * direction is rounding noise that standardisation then blows up.
 */
import type { Matrix } from '../linalg/matrix.ts';
import { pca } from '../linalg/pca.ts';
import { outerGram } from '../linalg/products.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, prepare } from './input.ts';

export interface ParcOptions extends CommonOptions {
  /** PCA components, k = min(pcaDims, D, N − 1), applied whatever D is (as the reference); null disables PCA. Default 32. */
  pcaDims?: number | null;
  /** Standardise columns before the correlation (the reference always does). Default true. */
  standardize?: boolean;
}

/** Column standardisation as scikit-learn's StandardScaler (population std; ~constant columns unscaled). */
function standardize(f: Matrix): Matrix {
  const { rows, cols } = f;
  const out = { rows, cols, data: new Float64Array(f.data.length) };
  for (let j = 0; j < cols; j++) {
    let mean = 0;
    for (let i = 0; i < rows; i++) mean += f.data[i * cols + j];
    mean /= rows;
    let v = 0;
    for (let i = 0; i < rows; i++) v += (f.data[i * cols + j] - mean) ** 2;
    let sd = Math.sqrt(v / rows);
    if (sd < 10 * 2 ** -52 * Math.max(1, Math.abs(mean))) sd = 1;
    for (let i = 0; i < rows; i++) out.data[i * cols + j] = (f.data[i * cols + j] - mean) / sd;
  }
  return out;
}

/** Rows centred by their own mean and scaled to unit norm, so row dot products are Pearson correlations. */
function correlationRows(f: Matrix, name: string): Matrix {
  const { rows, cols } = f;
  const out = { rows, cols, data: new Float64Array(f.data.length) };
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    let mean = 0;
    for (let j = 0; j < cols; j++) mean += f.data[r + j];
    mean /= cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += (f.data[r + j] - mean) ** 2;
    if (!(ss > 0))
      throw new TlabError(
        `${name}: row ${i} is constant, so its correlation with other rows (PARC) is undefined`,
      );
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < cols; j++) out.data[r + j] = (f.data[r + j] - mean) * inv;
  }
  return out;
}

/**
 * Spearman correlation between values split into group 0 (`a`) and group 1 (`b`) and the binary group
 * indicator, with average ranks for ties across both groups. Sorts its inputs in place.
 */
export function rankBiserial(a: Float64Array, b: Float64Array): number {
  a.sort();
  b.sort();
  const m = a.length + b.length;
  let i = 0;
  let j = 0;
  let pos = 0;
  let sumRankB = 0;
  let sumR2 = 0;
  while (i < a.length || j < b.length) {
    const v = j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i] : b[j];
    let ca = 0;
    let cb = 0;
    while (i < a.length && a[i] === v) {
      i++;
      ca++;
    }
    while (j < b.length && b[j] === v) {
      j++;
      cb++;
    }
    const t = ca + cb;
    const rank = pos + (t + 1) / 2;
    sumRankB += cb * rank;
    sumR2 += t * rank * rank;
    pos += t;
  }
  const rbar = (m + 1) / 2;
  const pb = b.length / m;
  const cov = sumRankB / m - rbar * pb;
  const varR = sumR2 / m - rbar * rbar;
  const varB = pb * (1 - pb);
  return cov / Math.sqrt(varR * varB);
}

export async function parc(
  features: Matrix,
  labels: ArrayLike<number>,
  options: ParcOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const name = options.names?.features ?? 'features';
  const n = features.rows;
  const dims = options.pcaDims === undefined ? 32 : options.pcaDims;
  if (dims !== null && !(Number.isInteger(dims) && dims >= 1))
    throw new TlabError(`parc: pcaDims must be a positive integer (or null for no PCA), got ${dims}`);
  let x =
    dims === null
      ? features
      : (await pca(features, Math.max(1, Math.min(dims, features.cols, n - 1)))).scores;
  if (options.standardize ?? true) x = standardize(x);
  const z = correlationRows(x, name);
  const corr = await outerGram(z);
  let same = 0;
  for (let c = 0; c < enc.numClasses; c++) same += (enc.counts[c] * (enc.counts[c] - 1)) / 2;
  const pairs = (n * (n - 1)) / 2;
  if (same === 0)
    throw new TlabError(`${options.names?.labels ?? 'labels'}: PARC needs a class with at least 2 samples`);
  const a = new Float64Array(same); // same-class pairs: label dissimilarity 0
  const b = new Float64Array(pairs - same); // different-class pairs: label dissimilarity C/(C−1)
  let ia = 0;
  let ib = 0;
  for (let i = 0; i < n; i++) {
    const r = i * n;
    const yi = enc.y[i];
    for (let j = i + 1; j < n; j++) {
      const v = 1 - corr.data[r + j];
      if (enc.y[j] === yi) a[ia++] = v;
      else b[ib++] = v;
    }
  }
  return 100 * rankBiserial(a, b);
}
