/**
 * Neighbourhood overlaps (Doimo, Glielmo, Ansuini, Laio, NeurIPS 2020), as DADApy's return_data_overlap and
 * return_label_overlap compute them:
 *  - between two representations of the same samples: χ_k = mean_i |N_k^A(i) ∩ N_k^B(i)| / k (1 = identical
 *    neighbourhoods; independent data give about k/(N−1));
 *  - against labels: mean_i of the fraction of i's k_i nearest neighbours sharing i's label, where
 *    `classFraction` f sets k_i = max(1, floor(f·n_{y_i})), and `weighted` averages with weights 1/n_{y_i} (the
 *    mean of per-class means).
 */
import { TlabError } from '../util/errors.ts';
import type { NeighbourTable } from './neighbours.ts';

/** Per-point overlaps of the first k neighbours (column 0, the point itself, excluded). */
export function pointOverlaps(a: NeighbourTable, b: NeighbourTable, k: number): Float64Array {
  if (a.n !== b.n)
    throw new TlabError(
      `overlap: the representations hold ${a.n} and ${b.n} points; they must be the same samples`,
    );
  if (!Number.isInteger(k) || k < 1 || k > a.maxk || k > b.maxk)
    throw new TlabError(
      `overlap: k=${k} must be in 1..${Math.min(a.maxk, b.maxk)} (the neighbours both tables hold)`,
    );
  const wa = a.maxk + 1;
  const wb = b.maxk + 1;
  const mark = new Int32Array(a.n).fill(-1);
  const out = new Float64Array(a.n);
  for (let i = 0; i < a.n; i++) {
    for (let m = 1; m <= k; m++) mark[a.indices[i * wa + m]] = i;
    let common = 0;
    for (let m = 1; m <= k; m++) if (mark[b.indices[i * wb + m]] === i) common++;
    out[i] = common / k;
  }
  return out;
}

/** χ_k(A, B): the mean neighbourhood overlap. DADApy's default k is 30. */
export function neighbourhoodOverlap(a: NeighbourTable, b: NeighbourTable, k = 30): number {
  const p = pointOverlaps(a, b, k);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += p[i];
  return s / p.length;
}

export interface LabelOverlapOptions {
  /** Fixed k for every point (used when classFraction is not given). */
  k?: number;
  /** k_i = max(1, floor(f · size of i's class)). The geometry pipeline uses 0.3. */
  classFraction?: number;
  /** Weight points by 1/(size of their class). Default true. */
  weighted?: boolean;
}

export interface LabelOverlapResult {
  value: number;
  /** Per-point overlaps. */
  points: Float64Array;
  /** Largest k used. */
  maxK: number;
}

export function labelOverlap(
  table: NeighbourTable,
  labels: ArrayLike<number>,
  options: LabelOverlapOptions = {},
  name = 'labels',
): LabelOverlapResult {
  const n = table.n;
  if (labels.length !== n)
    throw new TlabError(`${name} has ${labels.length} rows but the representation has ${n} points`);
  if (options.k === undefined && options.classFraction === undefined)
    throw new TlabError('label overlap: give k or classFraction');
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y)) throw new TlabError(`${name}: row ${i} is ${y}; labels must be integers`);
    counts.set(y, (counts.get(y) ?? 0) + 1);
  }
  const kOf = new Int32Array(n);
  const f = options.classFraction;
  if (f !== undefined) {
    if (!(f > 0 && f <= 1)) throw new TlabError(`label overlap: classFraction ${f} must be in (0, 1]`);
    for (let i = 0; i < n; i++) kOf[i] = Math.max(1, Math.floor((counts.get(labels[i]) as number) * f));
  } else {
    const k = options.k as number;
    if (!Number.isInteger(k) || k < 1)
      throw new TlabError(`label overlap: k=${k} must be a positive integer`);
    kOf.fill(k);
  }
  let maxK = 0;
  for (let i = 0; i < n; i++) maxK = Math.max(maxK, kOf[i]);
  if (maxK > table.maxk)
    throw new TlabError(
      `label overlap: needs ${maxK} neighbours per point, the neighbour table holds ${table.maxk}`,
      f !== undefined
        ? 'compute more neighbours or lower classFraction'
        : 'lower k or compute more neighbours',
    );
  const w = table.maxk + 1;
  const points = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let same = 0;
    for (let m = 1; m <= kOf[i]; m++) if (labels[table.indices[i * w + m]] === labels[i]) same++;
    points[i] = same / kOf[i];
  }
  let value = 0;
  if (options.weighted ?? true) {
    let wsum = 0;
    for (let i = 0; i < n; i++) {
      const wi = 1 / (counts.get(labels[i]) as number);
      value += wi * points[i];
      wsum += wi;
    }
    value /= wsum;
  } else {
    for (let i = 0; i < n; i++) value += points[i];
    value /= n;
  }
  return { value, points, maxK };
}
