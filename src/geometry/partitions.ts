/**
 * Agreement between two labelings of the same samples, as scikit-learn computes them:
 *  - ARI (Hubert & Arabie 1985) from the pair-confusion counts, exact in BigInt (1.0 when both partitions are
 *    trivial in the same way);
 *  - AMI (Vinh, Epps & Bailey 2010): (MI − E[MI]) / (avg(H(U), H(V)) − E[MI]), natural logs, E[MI] under the
 *    hypergeometric model through log-gamma; `average` arithmetic (sklearn's default), max, min or geometric.
 */
import { TlabError } from '../util/errors.ts';
import { lnGamma } from './special.ts';

interface Contingency {
  n: number;
  rows: number;
  cols: number;
  /** rows×cols counts. */
  table: Float64Array;
  a: Float64Array;
  b: Float64Array;
}

function encode(labels: ArrayLike<number>): { codes: Int32Array; count: number } {
  const values = [...new Set(Array.from(labels))].sort((x, y) => x - y);
  const index = new Map(values.map((v, i) => [v, i]));
  return { codes: Int32Array.from(labels, (v) => index.get(v) as number), count: values.length };
}

function contingency(u: ArrayLike<number>, v: ArrayLike<number>, what: string): Contingency {
  if (u.length !== v.length)
    throw new TlabError(`${what}: the labelings have ${u.length} and ${v.length} samples; they must match`);
  for (const [arr, side] of [
    [u, 'first'],
    [v, 'second'],
  ] as const)
    for (let i = 0; i < arr.length; i++)
      if (!Number.isFinite(arr[i]))
        throw new TlabError(`${what}: the ${side} labeling has ${arr[i]} at row ${i}; labels must be finite`);
  const cu = encode(u);
  const cv = encode(v);
  const table = new Float64Array(cu.count * cv.count);
  for (let i = 0; i < u.length; i++) table[cu.codes[i] * cv.count + cv.codes[i]]++;
  const a = new Float64Array(cu.count);
  const b = new Float64Array(cv.count);
  for (let i = 0; i < cu.count; i++)
    for (let j = 0; j < cv.count; j++) {
      a[i] += table[i * cv.count + j];
      b[j] += table[i * cv.count + j];
    }
  return { n: u.length, rows: cu.count, cols: cv.count, table, a, b };
}

/** Adjusted Rand index (sklearn adjusted_rand_score). */
export function adjustedRandIndex(u: ArrayLike<number>, v: ArrayLike<number>): number {
  const c = contingency(u, v, 'ARI');
  const n = BigInt(c.n);
  let sumSquares = 0n;
  for (const x of c.table) sumSquares += BigInt(x) * BigInt(x);
  let rowsDot = 0n; // Σ_ij n_ij b_j
  let colsDot = 0n; // Σ_ij n_ij a_i
  for (let i = 0; i < c.rows; i++)
    for (let j = 0; j < c.cols; j++) {
      const x = BigInt(c.table[i * c.cols + j]);
      rowsDot += x * BigInt(c.b[j]);
      colsDot += x * BigInt(c.a[i]);
    }
  const tp = sumSquares - n;
  const fp = rowsDot - sumSquares;
  const fn = colsDot - sumSquares;
  const tn = n * n - fp - fn - sumSquares;
  if (fn === 0n && fp === 0n) return 1;
  const num = 2n * (tp * tn - fn * fp);
  const den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn);
  return ratio(num, den);
}

/** num/den for BigInts, correctly rounded enough for doubles (scaled so both convert without overflow). */
function ratio(num: bigint, den: bigint): number {
  const bits = Math.max(
    num < 0n ? (-num).toString(2).length : num.toString(2).length,
    den.toString(2).length,
  );
  const shift = BigInt(Math.max(0, bits - 1000));
  return Number(num >> shift) / Number(den >> shift);
}

function entropy(counts: Float64Array, n: number): number {
  const nz = [...counts].filter((x) => x > 0);
  if (nz.length <= 1) return 0;
  let h = 0;
  for (const x of nz) h -= (x / n) * (Math.log(x) - Math.log(n));
  return h;
}

function mutualInformation(c: Contingency): number {
  if (c.rows === 1 || c.cols === 1) return 0;
  let mi = 0;
  const logN = Math.log(c.n);
  for (let i = 0; i < c.rows; i++)
    for (let j = 0; j < c.cols; j++) {
      const x = c.table[i * c.cols + j];
      if (x === 0) continue;
      const p = x / c.n;
      const term = p * (Math.log(x) - logN) + p * (-Math.log(c.a[i] * c.b[j]) + logN + logN);
      mi += Math.abs(term) < 2 ** -52 ? 0 : term;
    }
  return Math.max(0, mi);
}

/** E[MI] of two labelings with these marginals under random permutation (sklearn expected_mutual_information). */
export function expectedMutualInformation(a: Float64Array, b: Float64Array, n: number): number {
  if (a.length === 1 || b.length === 1) return 0;
  const top = Math.max(...a, ...b);
  const lnFact = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) lnFact[k] = lnGamma(k + 1);
  const logN = Math.log(n);
  let emi = 0;
  for (let i = 0; i < a.length; i++)
    for (let j = 0; j < b.length; j++) {
      const ai = a[i];
      const bj = b[j];
      const start = Math.max(1, ai - n + bj);
      const end = Math.min(ai, bj);
      const fixed = lnFact[ai] + lnFact[bj] + lnFact[n - ai] + lnFact[n - bj] - lnFact[n];
      const logAB = Math.log(ai) + Math.log(bj);
      for (let m = start; m <= end && m <= top; m++) {
        const term2 = logN + Math.log(m) - logAB;
        const gln = fixed - lnFact[m] - lnFact[ai - m] - lnFact[bj - m] - lnFact[n - ai - bj + m];
        emi += (m / n) * term2 * Math.exp(gln);
      }
    }
  return emi;
}

export type AmiAverage = 'arithmetic' | 'max' | 'min' | 'geometric';

/** Adjusted mutual information (sklearn adjusted_mutual_info_score). */
export function adjustedMutualInformation(
  u: ArrayLike<number>,
  v: ArrayLike<number>,
  average: AmiAverage = 'arithmetic',
): number {
  const c = contingency(u, v, 'AMI');
  if ((c.rows === 1 && c.cols === 1) || c.n === 0) return 1;
  const mi = mutualInformation(c);
  const emi = expectedMutualInformation(c.a, c.b, c.n);
  const hu = entropy(c.a, c.n);
  const hv = entropy(c.b, c.n);
  const norm =
    average === 'arithmetic'
      ? (hu + hv) / 2
      : average === 'max'
        ? Math.max(hu, hv)
        : average === 'min'
          ? Math.min(hu, hv)
          : Math.sqrt(hu * hv);
  let den = norm - emi;
  const eps = 2 ** -52;
  den = den < 0 ? Math.min(den, -eps) : Math.max(den, eps);
  return (mi - emi) / den;
}
