/**
 * Multinomial (softmax) logistic regression with an L2 penalty, fitted by L-BFGS: the model of scikit-learn's
 * `LogisticRegression(multi_class='multinomial', solver='lbfgs')`, the same optimum for the same C. With two
 * classes it keeps two weight rows (sklearn reports only row 1; row 0 is its negative at the optimum).
 *
 *   objective(W, b) = Σ_i −log softmax(W x_i + b)_{y_i} + ‖W‖²_F / (2C)        (b is not penalised)
 *
 * Convergence is tested on the gradient of the objective divided by n (as scikit-learn ≥ 1.4 scales its lbfgs
 * objective), so `tol` means the same thing for 100 rows and for 100k rows.
 */
import { TlabError } from '../util/errors.ts';
import { dot } from './dot.ts';
import { minimizeLbfgs } from './lbfgs.ts';
import {
  binomialMeanObjective,
  type LogisticProblem,
  multinomialMeanObjective,
  multinomialScratch,
} from './logistic-objective.ts';
import { assertFinite, type FloatArray, matrix } from './matrix.ts';

export interface LogisticRegressionOptions {
  /** Inverse regularisation strength as sklearn's C (objective: sum of per-row cross-entropy + ||W||²/(2C),
   *  intercept not penalised); default 1. */
  C?: number;
  /** L-BFGS iterations at most; default 200. */
  maxIter?: number;
  /** Converged when max |∂(objective / n)/∂θ| ≤ tol over all weights and biases; default 1e-6. */
  tol?: number;
  /** Fit a per-class intercept; default true. */
  fitIntercept?: boolean;
}

export interface LogisticModel {
  classes: number;
  dim: number;
  /** classes×dim, row-major. */
  weights: Float64Array;
  /** Per-class intercepts (zeros without fitIntercept). */
  bias: Float64Array;
  iterations: number;
  /** Whether the gradient criterion (tol) was met within maxIter. */
  converged: boolean;
}

function positiveInteger(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1)
    throw new TlabError(`logistic regression: ${name}=${v} must be an integer ≥ 1`);
}

function widen(x: FloatArray, n: number, d: number, what: string): Float64Array {
  if (x.length !== n * d)
    throw new TlabError(`${what}: x has ${x.length} values but n×d = ${n}×${d} needs ${n * d}`);
  const m = matrix(n, d, x); // float32 widened once
  assertFinite(m, `${what}: x`);
  return m.data;
}

/** Classes = max label + 1; every class 0..classes−1 must have a row, and there must be at least two. */
function countClasses(labels: Int32Array, n: number): number {
  if (labels.length !== n)
    throw new TlabError(`logistic regression: labels has ${labels.length} entries but x has ${n} rows`);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (y < 0) throw new TlabError(`logistic regression: labels[${i}]=${y}; labels must be 0..classes−1`);
    if (y > max) max = y;
  }
  const classes = max + 1;
  const counts = new Int32Array(classes);
  for (let i = 0; i < n; i++) counts[labels[i]]++;
  const empty: number[] = [];
  for (let k = 0; k < classes; k++) if (counts[k] === 0) empty.push(k);
  if (empty.length > 0)
    throw new TlabError(
      `logistic regression: class ${empty.slice(0, 10).join(', ')} of 0..${classes - 1} has no rows`,
      'labels must use every class from 0 to their maximum (re-encode them first)',
    );
  if (classes < 2)
    throw new TlabError(`logistic regression: all ${n} rows have label 0; at least two classes are needed`);
  return classes;
}

/**
 * Fits the model to n×d row-major features `x` and labels 0..classes−1. Throws a TlabError for bad shapes,
 * non-finite features, a single class, a class without rows or bad options.
 */
export function fitLogisticRegression(
  x: Float32Array | Float64Array,
  n: number,
  d: number,
  labels: Int32Array,
  options: LogisticRegressionOptions = {},
): LogisticModel {
  positiveInteger('n', n);
  positiveInteger('d', d);
  const C = options.C ?? 1;
  const maxIter = options.maxIter ?? 200;
  const tol = options.tol ?? 1e-6;
  const fitIntercept = options.fitIntercept ?? true;
  if (!(C > 0) || !Number.isFinite(C))
    throw new TlabError(`logistic regression: C=${C} must be a finite number > 0`);
  positiveInteger('maxIter', maxIter);
  if (!(tol >= 0)) throw new TlabError(`logistic regression: tol=${tol} must be ≥ 0`);
  const classes = countClasses(labels, n);
  const p: LogisticProblem = {
    x: widen(x, n, d, 'logistic regression'),
    n,
    d,
    labels,
    classes,
    invC: 1 / C,
    fitIntercept,
  };
  if (classes === 2) return fitBinary(p, maxIter, tol);
  const scratch = multinomialScratch(classes);
  const theta0 = new Float64Array(classes * (d + 1)); // W (classes×d) then b (classes)
  const res = minimizeLbfgs((theta, grad) => multinomialMeanObjective(p, theta, grad, scratch), theta0, {
    maxIter,
    gtol: tol,
  });
  return {
    classes,
    dim: d,
    weights: res.x.slice(0, classes * d),
    bias: res.x.slice(classes * d),
    iterations: res.iterations,
    converged: res.converged,
  };
}

/**
 * Two classes at half the cost: the multinomial optimum has W₀ = −W₁ and b₀ = −b₁ (its gradients sum to zero
 * over classes, and from zero the iterates keep that), and on that set the objective is the binomial one in
 * w = 2W₁, b = 2b₁ with penalty ‖w‖²/(4C), i.e. sklearn's binary fit with 2C. Its gradient in (w, b) equals the
 * multinomial gradient in (W₁, b₁), so `tol` is tested on the same quantity.
 */
function fitBinary(p: LogisticProblem, maxIter: number, tol: number): LogisticModel {
  const d = p.d;
  const t = new Float64Array(4);
  const res = minimizeLbfgs(
    (theta, grad) => binomialMeanObjective(p, theta, grad, t),
    new Float64Array(d + 1),
    {
      maxIter,
      gtol: tol,
    },
  );
  const weights = new Float64Array(2 * d);
  for (let j = 0; j < d; j++) {
    weights[d + j] = 0.5 * res.x[j];
    weights[j] = -weights[d + j];
  }
  const b = p.fitIntercept ? 0.5 * res.x[d] : 0;
  return {
    classes: 2,
    dim: d,
    weights,
    bias: Float64Array.of(b === 0 ? 0 : -b, b),
    iterations: res.iterations,
    converged: res.converged,
  };
}

function checkModelInput(model: LogisticModel, x: FloatArray, n: number, what: string): Float64Array {
  if (!Number.isInteger(n) || n < 0) throw new TlabError(`${what}: n=${n} must be an integer ≥ 0`);
  return widen(x, n, model.dim, what);
}

/** n×classes row-major class probabilities (softmax of W x + b). */
export function predictProba(model: LogisticModel, x: Float32Array | Float64Array, n: number): Float64Array {
  const xd = checkModelInput(model, x, n, 'predictProba');
  const { classes: K, dim: d, weights, bias } = model;
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let zmax = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < K; k++) {
      const v = bias[k] + dot(xd, i * d, weights, k * d, d);
      out[o + k] = v;
      if (v > zmax) zmax = v;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp(out[o + k] - zmax);
      out[o + k] = e;
      sum += e;
    }
    for (let k = 0; k < K; k++) out[o + k] /= sum;
  }
  return out;
}

/** The most probable class of each row (the lowest index on ties). */
export function predictClasses(model: LogisticModel, x: Float32Array | Float64Array, n: number): Int32Array {
  const xd = checkModelInput(model, x, n, 'predictClasses');
  const { classes: K, dim: d, weights, bias } = model;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestZ = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < K; k++) {
      const v = bias[k] + dot(xd, i * d, weights, k * d, d);
      if (v > bestZ) {
        bestZ = v;
        best = k;
      }
    }
    out[i] = best;
  }
  return out;
}
