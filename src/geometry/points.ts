/**
 * The point sets every estimator takes: an N×D float64 matrix of one representation. Validation errors name the
 * input (a file or a layer) and say what would be valid; exact duplicate rows are removed up front (keeping the
 * first occurrence, in the original order, so labels stay attached), because a zero distance breaks every
 * distance-ratio estimator.
 */
import { assertFinite, type Matrix, selectRows } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';

export interface PointsCheck {
  /** Name used in errors (a file, "layer 7", ...). Default 'features'. */
  name?: string;
  /** Rows needed, e.g. k + 1 for k neighbours; with `what` it explains the requirement. */
  minRows?: number;
  what?: string;
}

/** Checks shape and finiteness, and that the rows are not all one point (constant features). */
export function checkPoints(x: Matrix, options: PointsCheck = {}): void {
  const name = options.name ?? 'features';
  if (x.rows === 0 || x.cols === 0) throw new TlabError(`${name}: empty matrix [${x.rows}, ${x.cols}]`);
  assertFinite(x, name);
  if (x.rows > 1 && isConstant(x))
    throw new TlabError(
      `${name}: all ${x.rows} rows are the same point (constant features); distances between samples are all 0`,
      'check that the representation depends on the input (e.g. layer 0 at a token every prompt shares)',
    );
  const need = options.minRows ?? 1;
  if (x.rows < need)
    throw new TlabError(
      `${name}: ${x.rows} samples, but ${options.what ?? 'this'} needs at least ${need}`,
      'use more samples or a smaller neighbourhood (k)',
    );
}

function isConstant(x: Matrix): boolean {
  const { rows, cols, data } = x;
  for (let i = 1; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) if (data[r + j] !== data[j]) return false;
  }
  return true;
}

/** Checks that two inputs describe the same samples (same row count). */
export function checkSameRows(a: { rows: number }, b: { rows: number }, nameA: string, nameB: string): void {
  if (a.rows !== b.rows)
    throw new TlabError(
      `${nameB} has ${b.rows} rows but ${nameA} has ${a.rows}; both must hold the same samples in the same order`,
    );
}

export interface Deduplicated {
  /** Indices of the kept rows (first occurrences), ascending. */
  kept: Int32Array;
  /** Rows removed as exact copies of an earlier row. */
  duplicates: number;
  /** For every input row, the position in `kept` of the row it equals. */
  inverse: Int32Array;
}

/**
 * Exact duplicate rows (equal in every column; −0 equals 0, as in numpy): rows are hashed, and rows with equal
 * hashes are compared element by element, so the result is exact.
 */
export function findDuplicates(x: Matrix): Deduplicated {
  const { rows, cols, data } = x;
  const buckets = new Map<number, number[]>();
  const kept: number[] = [];
  const inverse = new Int32Array(rows);
  const view = new Float64Array(1);
  const words = new Uint32Array(view.buffer);
  for (let i = 0; i < rows; i++) {
    let h = 0x811c9dc5;
    const r = i * cols;
    for (let j = 0; j < cols; j++) {
      view[0] = data[r + j] + 0; // −0 + 0 = 0
      h = Math.imul(h ^ words[0], 0x01000193);
      h = Math.imul(h ^ words[1], 0x01000193);
    }
    const list = buckets.get(h);
    let match = -1;
    if (list)
      for (const k of list) {
        const o = kept[k] * cols;
        let same = true;
        for (let j = 0; j < cols; j++)
          if (data[o + j] !== data[r + j]) {
            same = false;
            break;
          }
        if (same) {
          match = k;
          break;
        }
      }
    if (match >= 0) inverse[i] = match;
    else {
      inverse[i] = kept.length;
      if (list) list.push(kept.length);
      else buckets.set(h, [kept.length]);
      kept.push(i);
    }
  }
  return { kept: Int32Array.from(kept), duplicates: rows - kept.length, inverse };
}

/** The matrix without exact duplicate rows, and which rows were kept. */
export function removeDuplicates(x: Matrix): Deduplicated & { points: Matrix } {
  const d = findDuplicates(x);
  return { ...d, points: d.duplicates === 0 ? x : selectRows(x, d.kept) };
}

/** Elements of `values` at `idx` (labels carried along with kept rows). */
export function pick<T extends Int32Array | Float64Array>(values: T, idx: ArrayLike<number>): T {
  const out = new (values.constructor as { new (n: number): T })(idx.length);
  for (let k = 0; k < idx.length; k++) out[k] = values[idx[k]];
  return out;
}

/** Indices present in both sorted index lists (the samples two de-duplicated representations share). */
export function intersectSorted(a: Int32Array, b: Int32Array): Int32Array {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push(a[i]);
      i++;
      j++;
    } else if (a[i] < b[j]) i++;
    else j++;
  }
  return Int32Array.from(out);
}
