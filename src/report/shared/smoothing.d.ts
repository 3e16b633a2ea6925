/** TensorBoard's debiased exponential moving average (see smoothing.js). weight in [0, 1). */
export function debiasedEma(values: ArrayLike<number>, weight: number): number[];
