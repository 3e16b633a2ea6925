/**
 * Domain classifier: how well a standardised logistic regression tells two tasks' features apart, by k-fold
 * cross-validation on a balanced sample, and the proxy A-distance d_A = 2(1 − 2ε) with ε the held-out error
 * (0 for indistinguishable tasks, 2 for separable ones; below 0 when the classifier is worse than chance).
 *
 * The procedure, reproducible from the fixture script (mulberry32 draws in this order):
 *   1. n = min(m₁, m₂, maxSamples) rows per task: a larger set is subsampled (first n of a shuffle, file order).
 *   2. The 2n rows (task 1 labelled 0, then task 2 labelled 1) are shuffled.
 *   3. Folds are scikit-learn's StratifiedKFold(n_splits=k, shuffle=False) of the shuffled rows.
 *   4. Per fold: features standardised with the training rows' mean and standard deviation (ddof 0; a constant
 *      column is left unscaled, as StandardScaler), logistic regression (sklearn's C) fitted, held-out rows
 *      predicted. The accuracy is over all 2n held-out predictions.
 */
import { fitLogisticRegression, predictClasses } from '../../linalg/logistic-regression.ts';
import { type Matrix, matrix } from '../../linalg/matrix.ts';
import { mulberry32, permutation } from '../../metrics/rng.ts';
import { TlabError } from '../../util/errors.ts';
import { checkPair, positiveIntSetting, subsampleRows } from './samples.ts';

export interface DomainClassifierOptions {
  /** Cross-validation folds; default 5. */
  folds?: number;
  /** Inverse regularisation strength of the logistic regression; default 1. */
  C?: number;
  /** Rows per task at most; default 5000. */
  maxSamples?: number;
  maxIter?: number;
  tol?: number;
  seed?: number;
}

export interface DomainClassifierResult {
  accuracy: number;
  proxyADistance: number;
  foldAccuracies: number[];
  /** Rows per task used. */
  perTask: number;
  folds: number;
  /** Whether every fold's fit met its tolerance. */
  converged: boolean;
}

/**
 * Test-fold index of every row, as scikit-learn 1.2's StratifiedKFold(shuffle=False): classes are numbered by
 * first appearance; the per-fold counts of each class come from dealing the class-sorted labels round-robin;
 * each class's rows (in order) fill folds 0, 1, ... in contiguous blocks of those counts.
 */
export function stratifiedFolds(labels: ArrayLike<number>, k: number): Int32Array {
  const order = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) if (!order.has(labels[i])) order.set(labels[i], order.size);
  const enc = Int32Array.from({ length: labels.length }, (_, i) => order.get(labels[i])!);
  const classes = order.size;
  const counts = new Int32Array(classes);
  for (const c of enc) counts[c]++;
  if ([...counts].every((c) => c < k))
    throw new TlabError(`stratified folds: ${k} folds but no class has ${k} members`);
  const sorted = Array.from(enc).sort((a, b) => a - b);
  const allocation = Array.from({ length: k }, () => new Int32Array(classes));
  for (let i = 0; i < sorted.length; i++) allocation[i % k][sorted[i]]++;
  const folds = new Int32Array(labels.length);
  for (let c = 0; c < classes; c++) {
    let fold = 0;
    let left = allocation[0][c];
    for (let i = 0; i < enc.length; i++) {
      if (enc[i] !== c) continue;
      while (left === 0) left = allocation[++fold][c];
      folds[i] = fold;
      left--;
    }
  }
  return folds;
}

/** Standardises the rows `test` and `train` of x with the statistics of `train` (StandardScaler). */
function standardise(
  x: Matrix,
  train: number[],
  test: number[],
): { train: Float64Array; test: Float64Array } {
  const d = x.cols;
  const mean = new Float64Array(d);
  for (const i of train) for (let j = 0; j < d; j++) mean[j] += x.data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= train.length;
  const sd = new Float64Array(d);
  for (const i of train)
    for (let j = 0; j < d; j++) {
      const v = x.data[i * d + j] - mean[j];
      sd[j] += v * v;
    }
  const nt = train.length;
  for (let j = 0; j < d; j++) {
    const variance = sd[j] / nt;
    // StandardScaler's near-constant test (the error bound of the two-pass variance): such a column is unscaled
    const bound = nt * Number.EPSILON * variance + (nt * mean[j] * Number.EPSILON) ** 2;
    sd[j] = variance <= bound ? 1 : Math.sqrt(variance);
  }
  const apply = (rows: number[]) => {
    const out = new Float64Array(rows.length * d);
    rows.forEach((i, r) => {
      for (let j = 0; j < d; j++) out[r * d + j] = (x.data[i * d + j] - mean[j]) / sd[j];
    });
    return out;
  };
  return { train: apply(train), test: apply(test) };
}

export function domainClassifier(
  x: Matrix,
  y: Matrix,
  options: DomainClassifierOptions = {},
): DomainClassifierResult {
  const what = 'domain classifier';
  const k = options.folds ?? 5;
  const cap = options.maxSamples ?? 5000;
  positiveIntSetting(what, 'folds', k);
  if (k < 2) throw new TlabError(`${what}: folds=${k} must be at least 2`);
  positiveIntSetting(what, 'max_samples', cap);
  checkPair(what, x, y, k);
  const rng = mulberry32(options.seed ?? 0);
  const n = Math.min(x.rows, y.rows, cap);
  if (n < k) throw new TlabError(`${what}: ${n} rows per task are fewer than the ${k} folds`);
  const xs = subsampleRows(x, n, rng);
  const ys = subsampleRows(y, n, rng);
  const d = x.cols;
  const order = permutation(2 * n, rng);
  const pooled = matrix(2 * n, d);
  const labels = new Int32Array(2 * n);
  for (let r = 0; r < 2 * n; r++) {
    const src = order[r];
    const from =
      src < n ? xs.data.subarray(src * d, (src + 1) * d) : ys.data.subarray((src - n) * d, (src - n + 1) * d);
    pooled.data.set(from, r * d);
    labels[r] = src < n ? 0 : 1;
  }
  const folds = stratifiedFolds(labels, k);
  let correct = 0;
  let converged = true;
  const foldAccuracies: number[] = [];
  for (let f = 0; f < k; f++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let r = 0; r < 2 * n; r++) (folds[r] === f ? test : train).push(r);
    const z = standardise(pooled, train, test);
    const model = fitLogisticRegression(
      z.train,
      train.length,
      d,
      Int32Array.from(train, (r) => labels[r]),
      { C: options.C ?? 1, maxIter: options.maxIter, tol: options.tol },
    );
    converged &&= model.converged;
    const pred = predictClasses(model, z.test, test.length);
    let ok = 0;
    test.forEach((r, i) => {
      if (pred[i] === labels[r]) ok++;
    });
    correct += ok;
    foldAccuracies.push(ok / test.length);
  }
  const accuracy = correct / (2 * n);
  return {
    accuracy,
    proxyADistance: 2 * (1 - 2 * (1 - accuracy)),
    foldAccuracies,
    perTask: n,
    folds: k,
    converged,
  };
}
