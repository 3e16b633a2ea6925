/**
 * Row kernels shared by the estimators' passes over N×D matrices. They are called once per row on purpose: V8
 * optimises a small function after a few hundred calls, while one long loop in a caller runs in its baseline tiers
 * until on-stack replacement, which cost the first (benchmarked) call several ms per pass.
 */

/**
 * Σ_{k<len} a[ao + k] b[bo + k] with four independent accumulators: with a single one every add waits for the
 * previous (4 cycles), which made the row loops of the substitutions and the power iteration ~3× slower.
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

/** out[oo + k] += a[ao + k] for k < len. */
export function addTo(out: Float64Array, oo: number, a: Float64Array, ao: number, len: number): void {
  for (let k = 0; k < len; k++) out[oo + k] += a[ao + k];
}

/** out[oo + k] = a[ao + k] − b[bo + k] for k < len. */
export function subtractInto(
  out: Float64Array,
  oo: number,
  a: Float64Array,
  ao: number,
  b: Float64Array,
  bo: number,
  len: number,
): void {
  for (let k = 0; k < len; k++) out[oo + k] = a[ao + k] - b[bo + k];
}
