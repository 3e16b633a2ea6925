/**
 * Unconstrained L-BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed.: two-loop recursion, Alg. 7.4; strong
 * Wolfe line search with cubic interpolation, Alg. 3.5/3.6). Written here rather than taken from npm because no
 * maintained package offers it (the few that exist are unmaintained ports without line-search safeguards), and it
 * is ~200 lines. Synchronous: the objective is a plain function.
 */
import { dot } from './dot.ts';

/** Returns f(x) and writes ∇f(x) into `grad`. */
export type ObjectiveWithGradient = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Iterations (line searches) at most. */
  maxIter: number;
  /** Converged when max_i |∂f/∂x_i| ≤ gtol (scipy's L-BFGS-B `gtol`). */
  gtol: number;
  /** Correction pairs kept (scipy's `maxcor`); default 10. */
  memory?: number;
}

export type LbfgsStop = 'gradient' | 'max-iter' | 'no-progress';

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  /** max_i |∂f/∂x_i| at x. */
  gradMaxAbs: number;
  iterations: number;
  evaluations: number;
  /** Whether the gradient criterion was met. */
  converged: boolean;
  /** Why it stopped: the gradient criterion, the iteration cap, or no float64 progress left in the line search. */
  stop: LbfgsStop;
}

const C1 = 1e-4; // sufficient decrease
const C2 = 0.9; // curvature (the usual quasi-Newton choice)
const MAX_LINE_EVALS = 30;

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}

/** Minimises `fg` from `x0` (not modified). */
export function minimizeLbfgs(
  fg: ObjectiveWithGradient,
  x0: Float64Array,
  options: LbfgsOptions,
): LbfgsResult {
  const n = x0.length;
  const m = options.memory ?? 10;
  const x = x0.slice();
  const g = new Float64Array(n);
  let f = fg(x, g);
  let evaluations = 1;
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  const alphaTmp = new Float64Array(m);
  const dir = new Float64Array(n);
  const xt = new Float64Array(n); // trial point of the line search and its gradient
  const gt = new Float64Array(n);

  const result = (iterations: number, stop: LbfgsStop): LbfgsResult => {
    const gradMaxAbs = maxAbs(g);
    return {
      x,
      f,
      gradMaxAbs,
      iterations,
      evaluations,
      converged: gradMaxAbs <= options.gtol,
      stop: gradMaxAbs <= options.gtol ? 'gradient' : stop,
    };
  };
  if (!Number.isFinite(f)) return result(0, 'no-progress');
  if (maxAbs(g) <= options.gtol) return result(0, 'gradient');

  /** φ(α) = f(x + α d) into xt, gt; returns [φ, φ']. */
  const phiAt = (alpha: number): [number, number] => {
    for (let i = 0; i < n; i++) xt[i] = x[i] + alpha * dir[i];
    const v = fg(xt, gt);
    evaluations++;
    return [v, dot(gt, 0, dir, 0, n)];
  };

  let iter = 0;
  while (iter < options.maxIter) {
    twoLoop(g, s, y, rho, alphaTmp, dir);
    let dphi0 = dot(g, 0, dir, 0, n);
    if (!(dphi0 < 0)) {
      // not a descent direction (only through rounding): restart from steepest descent
      clearHistory();
      for (let i = 0; i < n; i++) dir[i] = -g[i];
      dphi0 = dot(g, 0, dir, 0, n);
    }
    // first step: unit length along −g (as scipy's L-BFGS-B); afterwards the scaled quasi-Newton step α = 1
    const alpha0 = s.length === 0 ? Math.min(1, 1 / Math.sqrt(-dphi0)) : 1;
    const step = strongWolfe(phiAt, f, dphi0, alpha0);
    if (step === null) {
      if (s.length === 0) return result(iter, 'no-progress');
      clearHistory(); // a stale history can give a poor direction: try steepest descent once more
      continue;
    }
    iter++;
    // xt, gt hold the accepted point
    const sk = new Float64Array(n);
    const yk = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sk[i] = xt[i] - x[i];
      yk[i] = gt[i] - g[i];
    }
    const fPrev = f;
    x.set(xt);
    g.set(gt);
    f = step.value;
    const sy = dot(sk, 0, yk, 0, n);
    const yy = dot(yk, 0, yk, 0, n);
    if (sy > 1e-12 * yy && sy > 0) {
      if (s.length === m) {
        s.shift();
        y.shift();
        rho.shift();
      }
      s.push(sk);
      y.push(yk);
      rho.push(1 / sy);
    }
    if (maxAbs(g) <= options.gtol) return result(iter, 'gradient');
    // no change representable in float64: further iterations cannot help
    if (fPrev - f <= 1e-15 * Math.max(1, Math.abs(f)) && maxAbs(sk) <= 1e-15 * Math.max(1, maxAbs(x)))
      return result(iter, 'no-progress');
  }
  return result(iter, 'max-iter');

  function clearHistory(): void {
    s.length = 0;
    y.length = 0;
    rho.length = 0;
  }
}

interface LineStep {
  alpha: number;
  value: number;
}

/**
 * Strong Wolfe line search (N&W Alg. 3.5) on φ(α) = f(x + α d); the last φ evaluated is the accepted one, so the
 * caller's trial buffers hold the accepted point. Null when no acceptable step was found.
 */
function strongWolfe(
  phi: (a: number) => [number, number],
  phi0: number,
  dphi0: number,
  alpha1: number,
): LineStep | null {
  // float64 rounding: an Armijo test below this margin cannot be decided, so a point within it that satisfies
  // the curvature condition is accepted (the idea of Hager & Zhang's approximate Wolfe conditions)
  const epsF = 1e-12 * Math.max(1, Math.abs(phi0));
  const curvatureOk = (dv: number): boolean => Math.abs(dv) <= -C2 * dphi0;
  const decreaseOk = (a: number, v: number): boolean => v <= phi0 + C1 * a * dphi0;
  let aPrev = 0;
  let vPrev = phi0;
  let dPrev = dphi0;
  let a = alpha1;
  let evals = 0;

  /** Alg. 3.6: lo satisfies sufficient decrease with the lowest φ so far; a minimiser lies between lo and hi. */
  const zoom = (
    lo: number,
    vLo: number,
    dLo: number,
    hi: number,
    vHi: number,
    dHi: number,
  ): LineStep | null => {
    while (evals < MAX_LINE_EVALS) {
      const left = Math.min(lo, hi);
      const width = Math.abs(hi - lo);
      if (width <= 1e-16 * Math.max(1, Math.abs(lo))) return null;
      let t = Number.isFinite(vHi) ? cubicMin(lo, vLo, dLo, hi, vHi, dHi) : Number.NaN;
      if (!(t > left + 0.1 * width && t < left + 0.9 * width)) t = lo + 0.5 * (hi - lo); // safeguard: bisect
      const [v, dv] = phi(t);
      evals++;
      if (!Number.isFinite(v) || !decreaseOk(t, v) || v >= vLo) {
        if (Number.isFinite(v) && v <= phi0 + epsF && curvatureOk(dv)) return { alpha: t, value: v };
        hi = t;
        vHi = v;
        dHi = dv;
        continue;
      }
      if (curvatureOk(dv)) return { alpha: t, value: v };
      if (dv * (hi - lo) >= 0) {
        hi = lo;
        vHi = vLo;
        dHi = dLo;
      }
      lo = t;
      vLo = v;
      dLo = dv;
    }
    return null;
  };

  while (evals < MAX_LINE_EVALS) {
    const [v, dv] = phi(a);
    evals++;
    if (!Number.isFinite(v) || !decreaseOk(a, v) || (evals > 1 && v >= vPrev)) {
      if (Number.isFinite(v) && v <= phi0 + epsF && curvatureOk(dv)) return { alpha: a, value: v };
      return zoom(aPrev, vPrev, dPrev, a, v, dv);
    }
    if (curvatureOk(dv)) return { alpha: a, value: v };
    if (dv >= 0) return zoom(a, v, dv, aPrev, vPrev, dPrev);
    const next = cubicMin(aPrev, vPrev, dPrev, a, v, dv);
    aPrev = a;
    vPrev = v;
    dPrev = dv;
    a = Number.isFinite(next) ? Math.min(10 * a, Math.max(2 * a, next)) : 4 * a; // extrapolate within [2a, 10a]
  }
  return null;
}

/** Minimiser of the cubic through (a, fa, da), (b, fb, db) (N&W eq. 3.59); NaN when it has none. */
function cubicMin(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - (3 * (fa - fb)) / (a - b);
  const disc = d1 * d1 - da * db;
  if (!(disc >= 0)) return Number.NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(disc);
  const denom = db - da + 2 * d2;
  if (denom === 0) return Number.NaN;
  return b - (b - a) * ((db + d2 - d1) / denom);
}

/** dir = −H g by the two-loop recursion, H₀ = (sᵀy / yᵀy) I from the newest pair (I without history). */
function twoLoop(
  g: Float64Array,
  s: Float64Array[],
  y: Float64Array[],
  rho: number[],
  alpha: Float64Array,
  dir: Float64Array,
): void {
  const n = g.length;
  for (let i = 0; i < n; i++) dir[i] = -g[i];
  const k = s.length;
  for (let j = k - 1; j >= 0; j--) {
    const a = rho[j] * dot(s[j], 0, dir, 0, n);
    alpha[j] = a;
    axpy(dir, -a, y[j], n);
  }
  if (k > 0) {
    const gamma = 1 / (rho[k - 1] * dot(y[k - 1], 0, y[k - 1], 0, n));
    for (let i = 0; i < n; i++) dir[i] *= gamma;
  }
  for (let j = 0; j < k; j++) {
    const b = rho[j] * dot(y[j], 0, dir, 0, n);
    axpy(dir, alpha[j] - b, s[j], n);
  }
}

function axpy(out: Float64Array, a: number, x: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] += a * x[i];
}
