/**
 * Linear probes: L2 logistic regression (scikit-learn's objective and C, src/linalg/logistic-regression.ts) from a
 * representation to labels, with held-out accuracy. The split is stratified by label, or by group (e.g. the image
 * a patch comes from: neighbouring patches leak, so a group never straddles train and test). Features are
 * standardised with training statistics; C is chosen by inner cross-validation over a log grid; a majority-class
 * baseline and a control probe on shuffled training labels (Hewitt & Liang 2019) say what "above chance" means.
 */
import { fitLogisticRegression, predictClasses } from '../linalg/logistic-regression.ts';
import type { Matrix } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';
import { Rng } from '../util/random.ts';
import { checkPoints } from './points.ts';

export interface ProbeOptions {
  /** Held-out share of the samples (or groups). Default 0.2. */
  testFraction?: number;
  seed?: number;
  /** C values tried by the inner cross-validation. Default 1e-3 … 1e2 (6 values). */
  cGrid?: readonly number[];
  /** Inner folds; 0 or 1 uses `c` (or the grid's value nearest 1) without cross-validation. Default 3. */
  folds?: number;
  c?: number;
  maxIter?: number;
  /** Split by these group ids instead of by sample. */
  groups?: Int32Array;
  /** Also fit the shuffled-label control. Default true. */
  control?: boolean;
  name?: string;
}

export interface ProbeResult {
  /** Held-out accuracy. */
  accuracy: number;
  /** Mean of per-class held-out recalls. */
  macroAccuracy: number;
  trainAccuracy: number;
  /** Held-out accuracy of always answering the training set's most frequent class. */
  majority: number;
  /** Held-out accuracy of the same probe trained on shuffled labels. */
  control: number | null;
  c: number;
  train: number;
  test: number;
  classes: number;
}

const DEFAULT_GRID = [1e-3, 1e-2, 0.1, 1, 10, 100];

/** Stratified (or grouped) train/test split: returns test membership per sample. */
export function splitTrainTest(
  labels: Int32Array,
  fraction: number,
  seed: number,
  groups?: Int32Array,
): Uint8Array {
  const n = labels.length;
  const test = new Uint8Array(n);
  const rng = new Rng(seed);
  if (groups) {
    const ids = [...new Set(groups)].sort((a, b) => a - b);
    rng.shuffle(ids);
    const take = Math.max(1, Math.round(ids.length * fraction));
    const chosen = new Set(ids.slice(0, take));
    for (let i = 0; i < n; i++) if (chosen.has(groups[i])) test[i] = 1;
    return test;
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const list = byClass.get(labels[i]);
    if (list) list.push(i);
    else byClass.set(labels[i], [i]);
  }
  for (const [, rows] of [...byClass].sort((a, b) => a[0] - b[0])) {
    rng.shuffle(rows);
    const take = rows.length > 1 ? Math.max(1, Math.round(rows.length * fraction)) : 0;
    for (const i of rows.slice(0, take)) test[i] = 1;
  }
  return test;
}

interface Standardised {
  mean: Float64Array;
  scale: Float64Array;
}

function standardiser(x: Matrix, rows: readonly number[]): Standardised {
  const d = x.cols;
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (const i of rows) for (let j = 0; j < d; j++) mean[j] += x.data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= rows.length;
  for (const i of rows) for (let j = 0; j < d; j++) scale[j] += (x.data[i * d + j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt(scale[j] / rows.length);
    scale[j] = s > 0 ? 1 / s : 1; // constant columns stay 0 after centring
  }
  return { mean, scale };
}

function gather(x: Matrix, rows: readonly number[], s: Standardised): Float64Array {
  const d = x.cols;
  const out = new Float64Array(rows.length * d);
  rows.forEach((i, r) => {
    for (let j = 0; j < d; j++) out[r * d + j] = (x.data[i * d + j] - s.mean[j]) * s.scale[j];
  });
  return out;
}

/** Fits on `train` rows and predicts `test` rows; classes absent from the training rows are never predicted. */
function fitPredict(
  x: Matrix,
  y: Int32Array,
  train: readonly number[],
  test: readonly number[],
  c: number,
  maxIter: number,
): { predicted: Int32Array; trainPredicted: Int32Array } {
  const present = [...new Set(train.map((i) => y[i]))].sort((a, b) => a - b);
  const s = standardiser(x, train);
  const xt = gather(x, train, s);
  if (present.length < 2) {
    const only = present[0];
    return {
      predicted: new Int32Array(test.length).fill(only),
      trainPredicted: new Int32Array(train.length).fill(only),
    };
  }
  const code = new Map(present.map((v, k) => [v, k]));
  const yt = Int32Array.from(train, (i) => code.get(y[i]) as number);
  const model = fitLogisticRegression(xt, train.length, x.cols, yt, { C: c, maxIter });
  const back = (p: Int32Array) => p.map((k) => present[k]);
  return {
    predicted: test.length ? back(predictClasses(model, gather(x, test, s), test.length)) : new Int32Array(0),
    trainPredicted: back(predictClasses(model, xt, train.length)),
  };
}

function accuracyOf(predicted: Int32Array, y: Int32Array, rows: readonly number[]): number {
  let ok = 0;
  rows.forEach((i, r) => {
    if (predicted[r] === y[i]) ok++;
  });
  return rows.length ? ok / rows.length : Number.NaN;
}

function macroOf(predicted: Int32Array, y: Int32Array, rows: readonly number[]): number {
  const hit = new Map<number, [number, number]>();
  rows.forEach((i, r) => {
    const e = hit.get(y[i]) ?? [0, 0];
    e[0] += predicted[r] === y[i] ? 1 : 0;
    e[1] += 1;
    hit.set(y[i], e);
  });
  let s = 0;
  for (const [a, b] of hit.values()) s += a / b;
  return s / hit.size;
}

/** A held-out linear probe from x (rows = samples) to integer labels. */
export function linearProbe(x: Matrix, labels: ArrayLike<number>, options: ProbeOptions = {}): ProbeResult {
  const name = options.name ?? 'features';
  checkPoints(x, { name, minRows: 4, what: 'a probe (train and test samples)' });
  if (labels.length !== x.rows)
    throw new TlabError(`labels have ${labels.length} rows but ${name} has ${x.rows}; they must match`);
  const y = Int32Array.from(labels, (v, i) => {
    if (!Number.isInteger(v)) throw new TlabError(`labels: row ${i} is ${v}; probe labels must be integers`);
    return v;
  });
  const classes = new Set(y).size;
  if (classes < 2) throw new TlabError(`labels: a probe needs at least 2 classes, found ${classes}`);
  if (options.groups && options.groups.length !== x.rows)
    throw new TlabError(`probe groups have ${options.groups.length} rows but ${name} has ${x.rows}`);
  const fraction = options.testFraction ?? 0.2;
  if (!(fraction > 0 && fraction < 1))
    throw new TlabError(`probe: testFraction ${fraction} must be in (0, 1)`);
  const seed = options.seed ?? 0;
  const isTest = splitTrainTest(y, fraction, seed, options.groups);
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < x.rows; i++) (isTest[i] ? test : train).push(i);
  if (train.length < 2 || test.length < 1)
    throw new TlabError(`${name}: the split left ${train.length} training and ${test.length} test samples`);
  const maxIter = options.maxIter ?? 200;
  const grid = options.cGrid ?? DEFAULT_GRID;
  const folds = options.folds ?? 3;
  let c = options.c ?? grid.reduce((a, b) => (Math.abs(Math.log(b)) < Math.abs(Math.log(a)) ? b : a));
  if (folds > 1 && options.c === undefined && grid.length > 1) {
    // inner CV on the training rows (grouped folds when groups are given)
    const foldOf = new Int32Array(train.length);
    const rng = new Rng(seed + 1);
    if (options.groups) {
      const ids = rng.shuffle([...new Set(train.map((i) => options.groups![i]))]);
      const f = new Map(ids.map((g, k) => [g, k % folds]));
      train.forEach((i, r) => {
        foldOf[r] = f.get(options.groups![i]) as number;
      });
    } else {
      const order = rng.shuffle(train.map((_, r) => r)).sort((a, b) => y[train[a]] - y[train[b]]);
      order.forEach((r, k) => {
        foldOf[r] = k % folds;
      });
    }
    let best = -1;
    for (const cand of grid) {
      let sum = 0;
      for (let f = 0; f < folds; f++) {
        const tr = train.filter((_, r) => foldOf[r] !== f);
        const va = train.filter((_, r) => foldOf[r] === f);
        if (va.length === 0 || tr.length < 2) continue;
        sum += accuracyOf(fitPredict(x, y, tr, va, cand, maxIter).predicted, y, va);
      }
      if (sum > best + 1e-12) {
        best = sum;
        c = cand;
      }
    }
  }
  const fit = fitPredict(x, y, train, test, c, maxIter);
  const counts = new Map<number, number>();
  for (const i of train) counts.set(y[i], (counts.get(y[i]) ?? 0) + 1);
  const majorityClass = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
  let control: number | null = null;
  if (options.control ?? true) {
    const shuffled = Int32Array.from(y);
    const values = new Rng(seed + 2).shuffle(train.map((i) => y[i]));
    train.forEach((i, r) => {
      shuffled[i] = values[r];
    });
    control = accuracyOf(fitPredict(x, shuffled, train, test, c, maxIter).predicted, y, test);
  }
  return {
    accuracy: accuracyOf(fit.predicted, y, test),
    macroAccuracy: macroOf(fit.predicted, y, test),
    trainAccuracy: accuracyOf(fit.trainPredicted, y, train),
    majority: test.filter((i) => y[i] === majorityClass).length / test.length,
    control,
    c,
    train: train.length,
    test: test.length,
    classes,
  };
}
