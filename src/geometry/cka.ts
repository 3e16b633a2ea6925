/**
 * Centred kernel alignment between two representations of the same samples (Kornblith, Norouzi, Lee, Hinton,
 * ICML 2019), as the paper's reference code computes it:
 *  - linear: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) with centred columns (the feature form when the dimensions are small,
 *    otherwise the equal Gram form ⟨HKH, HLH⟩ / (‖HKH‖ ‖HLH‖));
 *  - RBF: k(x, y) = exp(−‖x − y‖² / (2 t² m)) with m the median of all n² squared distances (t = 1 by default);
 *  - debiased: U-centred Grams (the unbiased HSIC of Song et al. 2012), ≈ 0 for independent data.
 * Invariant to orthogonal maps, isotropic scaling and translation, not to general invertible linear maps.
 */
import { centerColumns, type Matrix } from '../linalg/matrix.ts';
import { gram, matmulTransA, outerGram } from '../linalg/products.ts';
import { TlabError } from '../util/errors.ts';
import { checkPoints, checkSameRows } from './points.ts';

export type CkaKernel = 'linear' | 'rbf';

export interface CkaOptions {
  kernel?: CkaKernel;
  /** U-centre the Grams (debiased CKA). Default false. */
  debiased?: boolean;
  /** RBF bandwidth as a fraction of the median distance. Default 1. */
  threshold?: number;
  names?: [string, string];
}

function frobeniusSquared(m: Matrix): number {
  let s = 0;
  for (let i = 0; i < m.data.length; i++) s += m.data[i] * m.data[i];
  return s;
}

/** n×n Gram of a representation: linear (of the centred rows) or RBF. */
export async function kernelGram(x: Matrix, kernel: CkaKernel, threshold = 1): Promise<Float64Array> {
  const k = await outerGram(centerColumns(x));
  if (kernel === 'linear') return k.data;
  const n = x.rows;
  const sq = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      sq[i * n + j] = Math.max(0, k.data[i * n + i] + k.data[j * n + j] - 2 * k.data[i * n + j]);
  const median = medianOf(sq);
  if (!(median > 0))
    throw new TlabError(
      'RBF CKA: the median squared distance is 0 (most rows are identical); the bandwidth is undefined',
    );
  const scale = 1 / (2 * threshold * threshold * median);
  for (let i = 0; i < n * n; i++) sq[i] = Math.exp(-sq[i] * scale);
  return sq;
}

function medianOf(values: Float64Array): number {
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Centres a Gram in place: H K H, or U-centring (zero diagonal) for the debiased estimator. */
export function centerGram(k: Float64Array, n: number, unbiased: boolean): Float64Array {
  if (unbiased) {
    if (n < 4) throw new TlabError(`debiased CKA needs at least 4 samples, got ${n}`);
    for (let i = 0; i < n; i++) k[i * n + i] = 0;
    const means = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) means[j] += k[i * n + j];
    let total = 0;
    for (let j = 0; j < n; j++) {
      means[j] /= n - 2;
      total += means[j];
    }
    for (let j = 0; j < n; j++) means[j] -= total / (2 * (n - 1));
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) k[i * n + j] -= means[i] + means[j];
    for (let i = 0; i < n; i++) k[i * n + i] = 0;
    return k;
  }
  const means = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) means[j] += k[i * n + j];
  let total = 0;
  for (let j = 0; j < n; j++) {
    means[j] /= n;
    total += means[j];
  }
  for (let j = 0; j < n; j++) means[j] -= total / n / 2;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) k[i * n + j] -= means[i] + means[j];
  return k;
}

/** CKA of two centred Grams: ⟨K, L⟩ / (‖K‖ ‖L‖). */
export function ckaFromCentredGrams(k: Float64Array, l: Float64Array): number {
  let kl = 0;
  let kk = 0;
  let ll = 0;
  for (let i = 0; i < k.length; i++) {
    kl += k[i] * l[i];
    kk += k[i] * k[i];
    ll += l[i] * l[i];
  }
  return kl / Math.sqrt(kk * ll);
}

function check(x: Matrix, y: Matrix, names: [string, string]): void {
  checkPoints(x, { name: names[0], minRows: 2, what: 'CKA' });
  checkPoints(y, { name: names[1], minRows: 2, what: 'CKA' });
  checkSameRows(x, y, names[0], names[1]);
}

/** Linear CKA in feature space (Kornblith's feature_space_linear_cka), optionally debiased. */
async function featureSpaceLinear(x: Matrix, y: Matrix, debiased: boolean): Promise<number> {
  const cx = centerColumns(x);
  const cy = centerColumns(y);
  let xy = frobeniusSquared(await matmulTransA(cx, cy));
  let xx = Math.sqrt(frobeniusSquared(await gram(cx)));
  let yy = Math.sqrt(frobeniusSquared(await gram(cy)));
  if (debiased) {
    const n = x.rows;
    if (n < 4) throw new TlabError(`debiased CKA needs at least 4 samples, got ${n}`);
    const rx = rowSquares(cx);
    const ry = rowSquares(cy);
    const sx = rx.reduce((a, b) => a + b, 0);
    const sy = ry.reduce((a, b) => a + b, 0);
    const helper = (v: number, a: Float64Array, b: Float64Array, na: number, nb: number) => {
      let ab = 0;
      for (let i = 0; i < n; i++) ab += a[i] * b[i];
      return v - (n / (n - 2)) * ab + (na * nb) / ((n - 1) * (n - 2));
    };
    xy = helper(xy, rx, ry, sx, sy);
    xx = Math.sqrt(helper(xx * xx, rx, rx, sx, sx));
    yy = Math.sqrt(helper(yy * yy, ry, ry, sy, sy));
  }
  return xy / (xx * yy);
}

function rowSquares(m: Matrix): Float64Array {
  const out = new Float64Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    let s = 0;
    for (let j = 0; j < m.cols; j++) s += m.data[i * m.cols + j] ** 2;
    out[i] = s;
  }
  return out;
}

/** CKA between two representations (rows = the same samples). */
export async function cka(x: Matrix, y: Matrix, options: CkaOptions = {}): Promise<number> {
  const names = options.names ?? ['features', 'features-b'];
  check(x, y, names);
  const kernel = options.kernel ?? 'linear';
  const debiased = options.debiased ?? false;
  const n = x.rows;
  if (kernel === 'linear') {
    // feature form when the p×p products are cheaper than the n×n Grams
    const featureCost = x.cols * y.cols + x.cols * x.cols + y.cols * y.cols;
    const gramCost = n * (x.cols + y.cols);
    if (featureCost <= gramCost) return featureSpaceLinear(x, y, debiased);
  }
  const threshold = options.threshold ?? 1;
  if (!(threshold > 0)) throw new TlabError(`RBF CKA: threshold ${threshold} must be positive`);
  const k = centerGram(await kernelGram(x, kernel, threshold), n, debiased);
  const l = centerGram(await kernelGram(y, kernel, threshold), n, debiased);
  return ckaFromCentredGrams(k, l);
}

/**
 * CKA between every layer of one model and every layer of another (rows: layers of `a`, columns: layers of `b`),
 * each Gram computed and centred once.
 */
export async function ckaMatrix(
  a: readonly Matrix[],
  b: readonly Matrix[],
  options: Omit<CkaOptions, 'names'> = {},
): Promise<number[][]> {
  const kernel = options.kernel ?? 'linear';
  const debiased = options.debiased ?? false;
  const threshold = options.threshold ?? 1;
  const n = a[0]?.rows ?? 0;
  for (const [i, m] of [...a, ...b].entries()) {
    checkPoints(m, { name: `layer matrix ${i}`, minRows: 2, what: 'CKA' });
    if (m.rows !== n) throw new TlabError(`CKA matrix: layer ${i} has ${m.rows} rows, the first has ${n}`);
  }
  const grams = async (ms: readonly Matrix[]) => {
    const out: Float64Array[] = [];
    for (const m of ms) out.push(centerGram(await kernelGram(m, kernel, threshold), n, debiased));
    return out;
  };
  const ga = await grams(a);
  const gb = a === b ? ga : await grams(b);
  return ga.map((k) => gb.map((l) => ckaFromCentredGrams(k, l)));
}
