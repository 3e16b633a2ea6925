/**
 * Input checks and seeded subsampling shared by the shift measures. Randomness is mulberry32 (src/metrics/rng.ts)
 * so the fixture script reproduces every subsample, permutation and fold assignment.
 */
import { assertFinite, type Matrix, selectRows } from '../../linalg/matrix.ts';
import { permutation, type Rng } from '../../metrics/rng.ts';
import { TlabError } from '../../util/errors.ts';

/** Two feature sets of one measure: finite, the same width, at least `minRows` rows each. */
export function checkPair(
  what: string,
  x: Matrix,
  y: Matrix,
  minRows: number,
  names = ['first', 'second'],
): void {
  for (const [m, name] of [
    [x, names[0]],
    [y, names[1]],
  ] as const) {
    if (m.rows < minRows)
      throw new TlabError(`${what}: ${name} set has ${m.rows} rows; at least ${minRows} are needed`);
    if (m.cols === 0) throw new TlabError(`${what}: ${name} set has no feature columns`);
    assertFinite(m, `${what}: ${name} set`);
  }
  if (x.cols !== y.cols)
    throw new TlabError(
      `${what}: ${names[0]} set has ${x.cols} feature columns but ${names[1]} has ${y.cols}; both must come from the same model and layer`,
    );
}

/** At most `cap` rows of m, chosen by a seeded shuffle and kept in file order (all rows when m has ≤ cap). */
export function subsampleRows(m: Matrix, cap: number, rng: Rng): Matrix {
  if (m.rows <= cap) return m;
  const idx = Array.from(permutation(m.rows, rng).subarray(0, cap)).sort((a, b) => a - b);
  return selectRows(m, idx);
}

export function positiveIntSetting(what: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new TlabError(`${what}: ${name}=${v} must be an integer ≥ 1`);
}
