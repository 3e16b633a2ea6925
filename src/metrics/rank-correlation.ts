/**
 * How well a metric ranks models against their fine-tuned accuracy (spec §11): Kendall τ-b, weighted Kendall
 * τ (hyperbolic weights, scipy.stats.weightedtau's definition), Spearman, Pearson, relative top-1 accuracy,
 * and paired bootstrap confidence intervals. All O(M²) or O(M log M) for M models.
 */
import { TlabError } from '../util/errors.ts';
import { mulberry32 } from './rng.ts';

function check(x: ArrayLike<number>, y: ArrayLike<number>, what: string): void {
  if (x.length !== y.length)
    throw new TlabError(`${what}: scores have ${x.length} entries but accuracies ${y.length}`);
  if (x.length < 2) throw new TlabError(`${what}: needs at least 2 models, got ${x.length}`);
}

const sgn = (v: number) => (v > 0 ? 1 : v < 0 ? -1 : 0);

/** Kendall τ-b (scipy's default variant); NaN when either side is constant. */
export function kendallTau(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, 'kendallTau');
  const n = x.length;
  let concordant = 0;
  let tiesX = 0;
  let tiesY = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const a = sgn(x[i] - x[j]);
      const b = sgn(y[i] - y[j]);
      if (a === 0) tiesX++;
      if (b === 0) tiesY++;
      concordant += a * b;
    }
  const n0 = (n * (n - 1)) / 2;
  return concordant / Math.sqrt((n0 - tiesX) * (n0 - tiesY));
}

/** τ for one ranking key (p, q): weights 1/(r+1) by position in decreasing (p, q) order. */
function weightedTauOneSide(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  p: ArrayLike<number>,
  q: ArrayLike<number>,
): number {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b] - p[a] || q[b] - q[a]);
  const w = new Float64Array(n);
  order.forEach((idx, r) => {
    w[idx] = 1 / (r + 1);
  });
  let num = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const wij = w[i] + w[j];
      const a = sgn(x[i] - x[j]);
      const b = sgn(y[i] - y[j]);
      num += wij * a * b;
      if (a !== 0) dx += wij;
      if (b !== 0) dy += wij;
    }
  return num / Math.sqrt(dx * dy);
}

/** Weighted Kendall τ with hyperbolic additive weights, averaged over both ranking keys (= scipy weightedtau). */
export function weightedKendallTau(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, 'weightedKendallTau');
  return 0.5 * (weightedTauOneSide(x, y, x, y) + weightedTauOneSide(x, y, y, x));
}

/** Pearson correlation; NaN when either side is constant. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, 'pearson');
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i] - mx;
    const b = y[i] - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** Average ranks (1-based), ties share the mean rank. */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && x[order[j + 1]] === x[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y, 'spearman');
  return pearson(averageRanks(x), averageRanks(y));
}

/** Accuracy of the model the metric ranks first, divided by the best accuracy (GR relative_top_accuracy). */
export function relativeTop1(scores: ArrayLike<number>, accuracy: ArrayLike<number>): number {
  check(scores, accuracy, 'relativeTop1');
  let best = 0;
  let maxAcc = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i] > scores[best]) best = i;
    maxAcc = Math.max(maxAcc, accuracy[i]);
  }
  return accuracy[best] / maxAcc;
}

export const CORRELATIONS = {
  kendall: kendallTau,
  'weighted-kendall': weightedKendallTau,
  spearman,
  pearson,
  'relative-top1': relativeTop1,
} as const;

export type CorrelationName = keyof typeof CORRELATIONS;

export interface BootstrapInterval {
  value: number;
  low: number;
  high: number;
  /** Resamples whose statistic was defined (not NaN, e.g. not all tied). */
  valid: number;
}

/**
 * Paired percentile bootstrap: resample models with replacement, recompute the statistic, take the
 * (1−level)/2 and (1+level)/2 quantiles. Seeded, so reruns agree.
 */
export function bootstrapInterval(
  stat: (x: ArrayLike<number>, y: ArrayLike<number>) => number,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  options: { resamples?: number; level?: number; seed?: number } = {},
): BootstrapInterval {
  check(x, y, 'bootstrap');
  const n = x.length;
  const resamples = options.resamples ?? 2000;
  const level = options.level ?? 0.95;
  const rng = mulberry32(options.seed ?? 0);
  const values: number[] = [];
  const bx = new Float64Array(n);
  const by = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rng() * n);
      bx[i] = x[k];
      by[i] = y[k];
    }
    const v = stat(bx, by);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const q = (p: number) => {
    if (values.length === 0) return Number.NaN;
    const pos = p * (values.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(values.length - 1, lo + 1);
    return values[lo] + (values[hi] - values[lo]) * (pos - lo);
  };
  return { value: stat(x, y), low: q((1 - level) / 2), high: q((1 + level) / 2), valid: values.length };
}
