/**
 * LEEP (Nguyen et al., ICML 2020; spec §3.1) from source-model class probabilities, and NCE (Tran et al., ICCV
 * 2019; spec §4) from hard source labels. Zero-mass source classes follow google-research's guards
 * (0/0 → 0, ln 0 → −ln C_t) instead of thuml's NaN.
 */
import { groupedRowPasses } from '../linalg/grouped.ts';
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
export async function leep(
  sourceProbs: Matrix,
  labels: ArrayLike<number>,
  options: LeepOptions = {},
): Promise<number> {
  const theta = options.logits ? softmaxRows(sourceProbs) : sourceProbs;
  const names = { ...options.names, features: options.names?.sourceProbs ?? 'source probabilities' };
  const enc = encodeLabels(labels, theta.rows, { ...options, names });
  const tolerance = options.tolerance ?? 1e-4;
  const { rows: n, cols: cs } = theta;
  // the joint's pass also yields each row's sum and minimum, so θ is validated without a pass of its own
  const eep = await groupedRowPasses(theta, enc.y, enc.numClasses, ({ sums, rowSums, rowMins }) => {
    for (let i = 0; i < n; i++)
      if (!(rowMins[i] >= 0) || !(Math.abs(rowSums[i] - 1) <= tolerance))
        probabilityRowError(theta.data.subarray(i * cs, (i + 1) * cs), i, rowSums[i], {
          sourceProbs: options.names?.sourceProbs,
        });
    return conditional(sums, enc.numClasses, cs);
  });
  return meanLog(eep, enc.numClasses);
}

/** LEEP on already validated probabilities and 0..C-1 labels. */
export async function leepEncoded(theta: Matrix, y: Int32Array, ct: number): Promise<number> {
  const eep = await groupedRowPasses(theta, y, ct, ({ sums }) => conditional(sums, ct, theta.cols));
  return meanLog(eep, ct);
}

/** P(y|z) from N·P(y, z) (row y, column z): the 1/N cancels; 0 where P(z) = 0. */
function conditional(joint: Float64Array, ct: number, cs: number): Float64Array {
  const pz = new Float64Array(cs);
  for (let c = 0; c < ct; c++) for (let z = 0; z < cs; z++) pz[z] += joint[c * cs + z];
  const cond = new Float64Array(ct * cs);
  for (let c = 0; c < ct; c++)
    for (let z = 0; z < cs; z++) cond[c * cs + z] = pz[z] > 0 ? joint[c * cs + z] / pz[z] : 0;
  return cond;
}

/** Mean of ln EEP_i, with ln 0 read as −ln C_t (google-research's guard). */
function meanLog(eep: Float64Array, ct: number): number {
  const floor = -Math.log(ct);
  let total = 0;
  for (let i = 0; i < eep.length; i++) total += eep[i] > 0 ? Math.log(eep[i]) : floor;
  return total / eep.length;
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
