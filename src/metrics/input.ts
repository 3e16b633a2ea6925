/**
 * Validation and label encoding shared by every estimator. Errors name the input (a file name when the CLI
 * passes one) and say what would be valid, e.g. `features.npy: row 17 contains NaN`.
 */
import { addTo } from '../linalg/dot.ts';
import { assertFinite, type Matrix } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';

export interface InputNames {
  /** How to call the features in errors (e.g. a file name). Default 'features'. */
  features?: string;
  labels?: string;
  sourceProbs?: string;
}

export interface EncodedLabels {
  /** Labels remapped to 0..C-1 (sorted order of the original values). */
  y: Int32Array;
  numClasses: number;
  /** Original value of each encoded class. */
  classes: number[];
  counts: Int32Array;
}

export interface LabelOptions {
  /** Expected number of classes; every class in 0..numClasses-1 must then occur. */
  numClasses?: number;
  names?: InputNames;
}

/** Checks labels (integers, no gaps when numClasses is given, at least 2 classes) and remaps them to 0..C-1. */
export function encodeLabels(
  labels: ArrayLike<number>,
  rows: number,
  options: LabelOptions = {},
): EncodedLabels {
  const name = options.names?.labels ?? 'labels';
  const fname = options.names?.features ?? 'features';
  if (labels.length !== rows)
    throw new TlabError(`${name} has ${labels.length} rows but ${fname} has ${rows}`);
  let lo = Infinity;
  let hi = -Infinity;
  if (labels instanceof Int32Array) {
    // integers by type: only the range is needed (the common case, and a monomorphic loop)
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  } else
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (!Number.isInteger(v)) throw new TlabError(`${name}: row ${i} is ${v}, labels must be integers`);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  // labels in a modest range (the usual 0..C-1) are counted in an array; a Map serves the rest
  const dense = rows > 0 && hi - lo < 1 << 20 ? new Int32Array(hi - lo + 1) : null;
  const seen = new Map<number, number>();
  if (dense) {
    for (let i = 0; i < rows; i++) dense[labels[i] - lo]++;
    for (let v = 0; v < dense.length; v++) if (dense[v] > 0) seen.set(v + lo, dense[v]);
  } else for (let i = 0; i < rows; i++) seen.set(labels[i], (seen.get(labels[i]) ?? 0) + 1);
  const classes = [...seen.keys()].sort((a, b) => a - b);
  if (options.numClasses !== undefined) {
    const c = options.numClasses;
    if (rows < c) throw new TlabError(`${name}: ${rows} samples are fewer than the ${c} classes`);
    for (const v of classes)
      if (v < 0 || v >= c) throw new TlabError(`${name}: label ${v} is outside 0..${c - 1}`);
    for (let k = 0; k < c; k++)
      if (!seen.has(k)) throw new TlabError(`${name}: class ${k} of 0..${c - 1} has no samples`);
  }
  if (classes.length < 2)
    throw new TlabError(`${name}: needs at least 2 classes, found ${classes.length} (${classes.join(', ')})`);
  const y = new Int32Array(rows);
  const counts = new Int32Array(classes.length);
  if (dense) {
    const index = new Int32Array(dense.length);
    classes.forEach((v, i) => {
      index[v - lo] = i;
    });
    for (let i = 0; i < rows; i++) y[i] = index[labels[i] - lo];
  } else {
    const index = new Map(classes.map((v, i) => [v, i]));
    for (let i = 0; i < rows; i++) y[i] = index.get(labels[i]) as number;
  }
  for (let i = 0; i < rows; i++) counts[y[i]]++;
  return { y, numClasses: classes.length, classes, counts };
}

/** Checks that features are finite and have at least one row and column. */
export function checkFeatures(f: Matrix, names: InputNames = {}): void {
  const name = names.features ?? 'features';
  if (f.rows === 0 || f.cols === 0) throw new TlabError(`${name}: empty matrix [${f.rows}, ${f.cols}]`);
  assertFinite(f, name);
}

export interface Prepared {
  features: Matrix;
  labels: EncodedLabels;
}

export interface CommonOptions extends LabelOptions {}

/** Validates features and labels together. */
export function prepare(features: Matrix, labels: ArrayLike<number>, options: CommonOptions = {}): Prepared {
  checkFeatures(features, options.names);
  const enc = encodeLabels(labels, features.rows, options);
  if (features.rows < enc.numClasses)
    throw new TlabError(
      `${options.names?.labels ?? 'labels'}: ${features.rows} samples are fewer than the ${enc.numClasses} classes`,
    );
  return { features, labels: enc };
}

/** Per-class sums of feature rows (C×D). */
export function classSums(f: Matrix, y: Int32Array, numClasses: number): Float64Array {
  const d = f.cols;
  const s = new Float64Array(numClasses * d);
  for (let i = 0; i < f.rows; i++) addTo(s, y[i] * d, f.data, i * d, d);
  return s;
}
