/**
 * Scales fitted to the data: log where the values span decades, and a domain of the data's range with a small
 * margin instead of vega's `nice` rounding (which stretched a log axis over 300–3000 to 100–10,000).
 */

export type ScaleChoice = 'linear' | 'log' | 'auto';

/** Values at least this many times apart (all positive) get a log axis under 'auto'. */
export const LOG_RATIO = 100;
/** Margin on each side of the data, as a fraction of its span in the axis's own space. */
export const DOMAIN_PADDING = 0.05;

const finite = (values: readonly number[]) => values.filter((v) => Number.isFinite(v));

/** The scale type for `values`: an explicit choice wins; 'auto' is log when all are positive and span ≥ 100×. */
export function chooseScale(choice: ScaleChoice | undefined, values: readonly number[]): 'linear' | 'log' {
  if (choice === 'linear' || choice === 'log') return choice;
  const vs = finite(values);
  if (vs.length === 0 || vs.some((v) => v <= 0)) return 'linear';
  return Math.max(...vs) / Math.min(...vs) >= LOG_RATIO ? 'log' : 'linear';
}

/**
 * [low, high] covering `values` with DOMAIN_PADDING each side: additive on a linear axis, multiplicative on a
 * log one (non-positive values cannot be drawn there and are left out). `zero` takes a linear domain to 0
 * without a margin beyond it, as vega's `zero` would. Null when there is nothing to fit.
 */
export function fitDomain(
  values: readonly number[],
  type: 'linear' | 'log',
  zero = false,
): [number, number] | null {
  const vs = finite(values).filter((v) => type === 'linear' || v > 0);
  if (vs.length === 0) return null;
  let min = Math.min(...vs);
  let max = Math.max(...vs);
  if (type === 'log') {
    const pad = DOMAIN_PADDING * Math.log10(max / min) || DOMAIN_PADDING;
    return [min / 10 ** pad, max * 10 ** pad];
  }
  if (zero) {
    min = Math.min(min, 0);
    max = Math.max(max, 0);
  }
  const pad = DOMAIN_PADDING * (max - min) || Math.abs(min) * DOMAIN_PADDING || 1;
  return [zero && min === 0 ? 0 : min - pad, zero && max === 0 ? 0 : max + pad];
}

/** `v` moved by `fraction` of the domain's span, in the axis's own space (multiplicative on a log axis). */
export function shiftInAxis(
  v: number,
  fraction: number,
  domain: [number, number],
  type: 'linear' | 'log',
): number {
  if (type === 'log') return v * (domain[1] / domain[0]) ** fraction;
  return v + fraction * (domain[1] - domain[0]);
}

/** Position of `v` in the axis's own space (log10 on a log axis), for distances measured as a share of the axis. */
export function toAxisSpace(v: number, type: 'linear' | 'log'): number {
  return type === 'log' ? Math.log10(v) : v;
}

export interface VegaScale {
  type: 'linear' | 'log';
  domain?: [number, number];
  nice: false;
  zero?: boolean;
}

/** The vega-lite `scale` of an axis over `values`. */
export function vegaScale(
  choice: ScaleChoice | undefined,
  values: readonly number[],
  zero = false,
): VegaScale {
  const type = chooseScale(choice, values);
  const domain = fitDomain(values, type, zero);
  return {
    type,
    ...(domain ? { domain } : {}),
    nice: false,
    ...(type === 'linear' ? { zero } : {}),
  };
}
