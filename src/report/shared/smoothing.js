// TensorBoard's scalar smoothing (vz_line_chart2 line-chart.ts, resmoothDataset): a first-order IIR filter
// started at 0 and debiased by dividing by 1 − w^k after k finite points, so early points are not pulled towards
// zero. Equivalently smoothed_k = Σ_{i≤k} w^(k−i) x_i / Σ_{i≤k} w^(k−i) over the finite points. Non-finite
// values pass through unchanged, and a constant series is left as it is (TensorBoard #786). Plain JavaScript so
// the dashboard's browser code and the Node report share it.

/**
 * @param {ArrayLike<number>} values
 * @param {number} weight smoothing weight in [0, 1) (0 = none; TensorBoard's slider goes to 0.999)
 * @returns {number[]}
 */
export function debiasedEma(values, weight) {
  if (!(weight >= 0 && weight < 1)) throw new RangeError(`smoothing weight must be in [0, 1), got ${weight}`);
  const out = new Array(values.length);
  const first = values.length > 0 ? values[0] : 0;
  let constant = true;
  for (let i = 0; i < values.length; i++) if (values[i] !== first) constant = false;
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (constant || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    count++;
    out[i] = last / (1 - weight ** count);
  }
  return out;
}
