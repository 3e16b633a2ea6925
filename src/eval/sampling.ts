/**
 * Next-token choice from one row of logits, on the host in float64: greedy (temperature 0), or sampling after
 * temperature, top-k and top-p in Hugging Face's order (temperature first, so top-p sees the tempered
 * distribution). Sampling walks the kept tokens in id order with one uniform draw, so a filter that keeps
 * everything (top-k 0, top-p 1) gives exactly the unfiltered draw.
 */
import { TlabError } from '../util/errors.ts';
import type { Rng } from '../util/random.ts';

export interface SamplingParams {
  /** 0 = greedy; otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most likely tokens (ties at the k-th value kept, as Hugging Face); 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 = off. */
  topP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1 };

/** Checks sampling knobs; errors name the option (`where` prefixes it, e.g. a flag or config key style). */
export function validateSampling(p: SamplingParams, name = (key: string) => key): void {
  if (!Number.isFinite(p.temperature) || p.temperature < 0)
    throw new TlabError(`${name('temperature')}: expected a number >= 0 (0 = greedy), got ${p.temperature}`);
  if (!Number.isInteger(p.topK) || p.topK < 0)
    throw new TlabError(`${name('topK')}: expected an integer >= 0 (0 = off), got ${p.topK}`);
  if (!(p.topP > 0 && p.topP <= 1))
    throw new TlabError(`${name('topP')}: expected a number in (0, 1] (1 = off), got ${p.topP}`);
}

/** Index of the largest value (the first one on ties), as torch.argmax. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The distribution sampling draws from: kept token ids in ascending order and their renormalised probabilities. */
export interface Distribution {
  ids: Int32Array;
  probs: Float64Array;
}

/** Temperature, then top-k, then top-p applied to one row of logits (temperature must be > 0). */
export function filteredDistribution(logits: ArrayLike<number>, p: SamplingParams): Distribution {
  const v = logits.length;
  // log-softmax of logits / temperature in float64.
  const z = new Float64Array(v);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < v; i++) {
    z[i] = logits[i] / p.temperature;
    if (z[i] > max) max = z[i];
  }
  let sum = 0;
  for (let i = 0; i < v; i++) sum += Math.exp(z[i] - max);
  const logZ = max + Math.log(sum);
  const probs = new Float64Array(v);
  for (let i = 0; i < v; i++) probs[i] = Math.exp(z[i] - logZ);

  const keep = new Uint8Array(v).fill(1);
  if (p.topK > 0 && p.topK < v) {
    const threshold = kthLargest(z, p.topK);
    for (let i = 0; i < v; i++) if (z[i] < threshold) keep[i] = 0;
  }
  if (p.topP < 1) applyTopP(probs, keep, p.topP);

  let kept = 0;
  let mass = 0;
  for (let i = 0; i < v; i++)
    if (keep[i]) {
      kept++;
      mass += probs[i];
    }
  const ids = new Int32Array(kept);
  const out = new Float64Array(kept);
  for (let i = 0, j = 0; i < v; i++)
    if (keep[i]) {
      ids[j] = i;
      out[j++] = probs[i] / mass;
    }
  return { ids, probs: out };
}

/** One token from one row of logits: greedy at temperature 0, else one draw from `rng`. */
export function chooseToken(logits: ArrayLike<number>, p: SamplingParams, rng: Rng): number {
  if (p.temperature === 0) return argmax(logits);
  const { ids, probs } = filteredDistribution(logits, p);
  const u = rng.next();
  let acc = 0;
  for (let j = 0; j < ids.length; j++) {
    acc += probs[j];
    if (u < acc) return ids[j];
  }
  return ids[ids.length - 1]; // u within rounding of 1
}

/** The k-th largest value of x (1 <= k <= length), by quickselect on a copy: O(V) per step, not a full sort. */
function kthLargest(x: Float64Array, k: number): number {
  const a = Float64Array.from(x);
  const target = a.length - k; // index in ascending order
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target];
  }
  return a[target];
}

/**
 * Top-p (nucleus) among the kept tokens: keep a token when the tokens ranked strictly above it hold less than p
 * of the kept mass, i.e. the smallest most-likely set whose probability reaches p (Hugging Face's rule, which
 * renormalises after top-k). Only the tokens above a threshold that already holds mass p are sorted.
 */
function applyTopP(probs: Float64Array, keep: Uint8Array, topP: number): void {
  let pmax = 0;
  let total = 0;
  for (let i = 0; i < probs.length; i++)
    if (keep[i]) {
      total += probs[i];
      if (probs[i] > pmax) pmax = probs[i];
    }
  const target = topP * total;
  // Lower the threshold until the tokens at or above it hold the target mass; the nucleus lies within them.
  let threshold = pmax;
  let candidates: number[] = [];
  for (;;) {
    candidates = [];
    let mass = 0;
    for (let i = 0; i < probs.length; i++)
      if (keep[i] && probs[i] >= threshold) {
        candidates.push(i);
        mass += probs[i];
      }
    if (mass >= target || threshold === 0) break;
    threshold = threshold > 1e-300 ? threshold / 16 : 0;
  }
  candidates.sort((a, b) => probs[b] - probs[a] || a - b);
  const nucleus = new Uint8Array(probs.length);
  let above = 0;
  for (const i of candidates) {
    if (above >= target) break;
    nucleus[i] = 1;
    above += probs[i];
  }
  for (let i = 0; i < probs.length; i++) keep[i] &= nucleus[i];
}
