/**
 * Σ_{k<len} a[ao + k] b[bo + k] with four independent accumulators: with a single one every add waits for the
 * previous (4 cycles), which made the row loops of the substitutions, the power iteration and LEEP ~3× slower.
 */
export function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < len; k += 4) {
    s0 += a[ao + k] * b[bo + k];
    s1 += a[ao + k + 1] * b[bo + k + 1];
    s2 += a[ao + k + 2] * b[bo + k + 2];
    s3 += a[ao + k + 3] * b[bo + k + 3];
  }
  for (; k < len; k++) s0 += a[ao + k] * b[bo + k];
  return s0 + s1 + (s2 + s3);
}
