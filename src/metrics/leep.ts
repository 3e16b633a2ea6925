/**
 * LEEP (Nguyen et al., ICML 2020; spec §3.1) from source-model class probabilities, and NCE (Tran et al., ICCV
 * 2019; spec §4) from hard source labels. Zero-mass source classes follow google-research's guards
 * (0/0 → 0, ln 0 → −ln C_t) instead of thuml's NaN.
 */
import { dot } from '../linalg/dot.ts';
import type { Matrix } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, encodeLabels, type InputNames } from './input.ts';

export interface LeepOptions extends CommonOptions {
  /** Treat the source outputs as logits and softmax each row first. */
  logits?: boolean;
  /** Largest |row sum − 1| accepted for probabilities. Default 1e-4. */
  tolerance?: number;
}

/** Row-wise softmax (a new matrix). */
export function softmaxRows(m: Matrix): Matrix {
  const out = { rows: m.rows, cols: m.cols, data: new Float64Array(m.data.length) };
  for (let i = 0; i < m.rows; i++) {
    const r = i * m.cols;
    let max = -Infinity;
    for (let k = 0; k < m.cols; k++) max = Math.max(max, m.data[r + k]);
    let s = 0;
    for (let k = 0; k < m.cols; k++) {
      const e = Math.exp(m.data[r + k] - max);
      out.data[r + k] = e;
      s += e;
    }
    for (let k = 0; k < m.cols; k++) out.data[r + k] /= s;
  }
  return out;
}

/** Checks that every row is a probability distribution; names the first bad row. */
export function checkProbabilities(p: Matrix, names: InputNames = {}, tolerance = 1e-4): void {
  const { rows, cols, data } = p;
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    let s = 0;
    let bad = false;
    for (let k = 0; k < cols; k++) {
      const v = data[r + k];
      s += v;
      bad ||= !(v >= 0 && v < Infinity); // NaN, ±Infinity or negative; the row is then re-read for the message
    }
    if (bad || Math.abs(s - 1) > tolerance) probabilityRowError(data.subarray(r, r + cols), i, s, names);
  }
}

function probabilityRowError(row: Float64Array, i: number, s: number, names: InputNames): never {
  const name = names.sourceProbs ?? 'source probabilities';
  for (const v of row) {
    if (!Number.isFinite(v))
      throw new TlabError(`${name}: row ${i} contains ${Number.isNaN(v) ? 'NaN' : 'an infinite value'}`);
    if (v < 0)
      throw new TlabError(
        `${name}: row ${i} has a negative probability (${v}); pass logits with the logits option`,
      );
  }
  throw new TlabError(
    `${name}: row ${i} sums to ${s.toPrecision(6)}, not 1; probabilities are needed (softmax the logits, or pass them as logits)`,
  );
}

/** LEEP = (1/N) Σ_i ln Σ_z P̂(y_i|z) θ_iz; ≤ 0, 0 for a deterministic source→target map. */
export function leep(sourceProbs: Matrix, labels: ArrayLike<number>, options: LeepOptions = {}): number {
  const theta = options.logits ? softmaxRows(sourceProbs) : sourceProbs;
  const names = { ...options.names, features: options.names?.sourceProbs ?? 'source probabilities' };
  const enc = encodeLabels(labels, theta.rows, { ...options, names });
  // one pass validates the rows (as checkProbabilities) and accumulates the joint: θ is read twice, not three times
  const { rows: n, cols: cs, data } = theta;
  const tolerance = options.tolerance ?? 1e-4;
  const joint = new Float64Array(enc.numClasses * cs);
  for (let i = 0; i < n; i++) {
    const s = accumulateRow(data, i * cs, joint, enc.y[i] * cs, cs);
    if (!(Math.abs(s - 1) <= tolerance)) {
      const row = data.subarray(i * cs, (i + 1) * cs);
      probabilityRowError(
        row,
        i,
        row.reduce((a, b) => a + b, 0),
        { sourceProbs: options.names?.sourceProbs },
      );
    }
  }
  return leepFromJoint(theta, enc.y, enc.numClasses, joint);
}

/*
 * The per-row loops live in small functions: called once per row, they are optimised after a few hundred calls,
 * where one long loop in the caller waits for on-stack replacement; and two accumulators keep the adds from
 * waiting on each other.
 */

/** Adds θ's row (at r) into the joint's row (at o); returns the row sum, NaN or −1 when an entry is invalid. */
function accumulateRow(data: Float64Array, r: number, joint: Float64Array, o: number, cs: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let min = 0;
  let z = 0;
  for (; z + 3 < cs; z += 4) {
    const a = data[r + z];
    const b = data[r + z + 1];
    const c = data[r + z + 2];
    const d = data[r + z + 3];
    s0 += a;
    s1 += b;
    s2 += c;
    s3 += d;
    joint[o + z] += a;
    joint[o + z + 1] += b;
    joint[o + z + 2] += c;
    joint[o + z + 3] += d;
    min = Math.min(min, a, b, c, d);
  }
  for (; z < cs; z++) {
    const a = data[r + z];
    s0 += a;
    joint[o + z] += a;
    min = Math.min(min, a);
  }
  return min < 0 ? -1 : s0 + s1 + (s2 + s3); // NaN or ±Infinity entries make the sum NaN or infinite
}

/** LEEP on already validated probabilities and 0..C-1 labels. */
export function leepEncoded(theta: Matrix, y: Int32Array, ct: number): number {
  const { rows: n, cols: cs, data } = theta;
  const joint = new Float64Array(ct * cs);
  for (let i = 0; i < n; i++) {
    const r = i * cs;
    const o = y[i] * cs;
    for (let z = 0; z < cs; z++) joint[o + z] += data[r + z];
  }
  return leepFromJoint(theta, y, ct, joint);
}

/** LEEP from θ and N·P(y, z) (row y, column z). */
function leepFromJoint(theta: Matrix, y: Int32Array, ct: number, joint: Float64Array): number {
  const { rows: n, cols: cs, data } = theta;
  const pz = new Float64Array(cs);
  for (let c = 0; c < ct; c++) for (let z = 0; z < cs; z++) pz[z] += joint[c * cs + z];
  const cond = new Float64Array(ct * cs); // P(y|z) = joint/pz (the 1/N cancels), 0 where P(z) = 0
  for (let c = 0; c < ct; c++)
    for (let z = 0; z < cs; z++) cond[c * cs + z] = pz[z] > 0 ? joint[c * cs + z] / pz[z] : 0;
  let total = 0;
  const floor = -Math.log(ct);
  for (let i = 0; i < n; i++) {
    const eep = dot(data, i * cs, cond, y[i] * cs, cs);
    total += eep > 0 ? Math.log(eep) : floor;
  }
  return total / n;
}

/** Index of each row's largest entry (first on ties): hard source labels z = argmax θ. */
export function argmaxRows(m: Matrix): Int32Array {
  const z = new Int32Array(m.rows);
  for (let i = 0; i < m.rows; i++) {
    let best = -Infinity;
    for (let k = 0; k < m.cols; k++) {
      const v = m.data[i * m.cols + k];
      if (v > best) {
        best = v;
        z[i] = k;
      }
    }
  }
  return z;
}

/** NCE = −H(Y|Z) from the empirical joint of source labels z and target labels y; in [−H(Y), 0]. */
export function nce(
  sourceLabels: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: CommonOptions = {},
): number {
  const n = labels.length;
  const srcName = options.names?.sourceProbs ?? 'source labels';
  if (sourceLabels.length !== n)
    throw new TlabError(
      `${options.names?.labels ?? 'labels'} has ${n} rows but ${srcName} has ${sourceLabels.length}`,
    );
  const enc = encodeLabels(labels, n, options);
  const zIndex = new Map<number, number>();
  const z = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = sourceLabels[i];
    if (!Number.isInteger(v))
      throw new TlabError(`${srcName}: row ${i} is ${v}, source labels must be integers`);
    let k = zIndex.get(v);
    if (k === undefined) {
      k = zIndex.size;
      zIndex.set(v, k);
    }
    z[i] = k;
  }
  const cs = zIndex.size;
  const ct = enc.numClasses;
  const joint = new Float64Array(ct * cs);
  for (let i = 0; i < n; i++) joint[enc.y[i] * cs + z[i]] += 1 / n;
  const pz = new Float64Array(cs);
  for (let c = 0; c < ct; c++) for (let k = 0; k < cs; k++) pz[k] += joint[c * cs + k];
  let s = 0;
  for (let c = 0; c < ct; c++)
    for (let k = 0; k < cs; k++) {
      const p = joint[c * cs + k];
      if (p > 0) s += p * Math.log(p / pz[k]);
    }
  return s;
}
