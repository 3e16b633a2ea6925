/**
 * The part of Python's jsondiff (xlwings/jsondiff 2.2, `diff(a, b)` with the default compact syntax) that the
 * llama-cookbook JSON score depends on, ported so its counts come out identical: dicts diffed key by key, lists
 * by an LCS weighted by element similarity, values compared with Python's `!=` (so 1 == 1.0 == True). The diff
 * is returned as Python would hold it: PyDict for dicts with symbol or integer keys, PyTuple for the
 * (position, value) pairs of insertions; JSON values appear as themselves.
 */

export const REPLACE = Symbol('replace');
export const INSERT = Symbol('insert');
export const DELETE = Symbol('delete');

/** A Python dict created by the diff (its keys can be symbols or list positions). */
export class PyDict {
  readonly entries = new Map<unknown, unknown>();
  constructor(entries?: Iterable<[unknown, unknown]>) {
    if (entries) for (const [k, v] of entries) this.entries.set(k, v);
  }
}

export class PyTuple {
  constructor(readonly items: readonly unknown[]) {}
}

type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof PyDict) &&
    !(v instanceof PyTuple)
  );
}

/** isinstance(v, dict) for the values the diff holds. */
export function isPyDict(v: unknown): boolean {
  return v instanceof PyDict || isJsonObject(v);
}

/** Python's `a == b` for JSON values (bool is an int: True == 1 == 1.0). */
export function pyEqual(a: unknown, b: unknown): boolean {
  const num = (v: unknown) => (typeof v === 'boolean' ? Number(v) : v);
  if ((typeof a === 'number' || typeof a === 'boolean') && (typeof b === 'number' || typeof b === 'boolean'))
    return num(a) === num(b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => pyEqual(x, b[i]));
  }
  const ka = Object.keys(a as JsonObject);
  const kb = b as JsonObject;
  if (ka.length !== Object.keys(kb).length) return false;
  return ka.every((k) => Object.hasOwn(kb, k) && pyEqual((a as JsonObject)[k], kb[k]));
}

/** Python truthiness (`if not diff_result:`). */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
  if (v instanceof PyDict) return v.entries.size > 0;
  if (v instanceof PyTuple) return v.items.length > 0;
  return Object.keys(v as JsonObject).length > 0;
}

type Scored = [diff: unknown, similarity: number];

const replaced = (b: unknown): unknown => (isJsonObject(b) ? new PyDict([[REPLACE, b]]) : b);

function emitValueDiff(b: unknown, s: number): unknown {
  return s === 1.0 ? new PyDict() : replaced(b);
}

function dictDiff(a: JsonObject, b: JsonObject): Scored {
  let nremoved = 0;
  let nadded = 0;
  let nmatched = 0;
  let smatched = 0.0;
  const removed: string[] = [];
  const changed = new PyDict();
  for (const k of Object.keys(a)) {
    if (!Object.hasOwn(b, k)) {
      nremoved += 1;
      removed.push(k);
    } else {
      nmatched += 1;
      const [d, s] = objDiff(a[k], b[k]);
      if (s < 1.0) changed.entries.set(k, d);
      smatched += 0.5 + 0.5 * s;
    }
  }
  const added: [string, unknown][] = [];
  for (const k of Object.keys(b)) {
    if (!Object.hasOwn(a, k)) {
      nadded += 1;
      added.push([k, b[k]]);
    }
  }
  const nTot = nremoved + nmatched + nadded;
  const s = nTot !== 0 ? smatched / nTot : 1.0;
  if (s === 0.0) return [replaced(b), s];
  if (s === 1.0 && added.length === 0 && changed.entries.size === 0 && removed.length === 0)
    return [new PyDict(), s];
  for (const [k, v] of added) changed.entries.set(k, v);
  if (removed.length > 0) changed.entries.set(DELETE, removed);
  return [changed, s];
}

function listDiff(X: readonly unknown[], Y: readonly unknown[]): Scored {
  const m = X.length;
  const n = Y.length;
  // The element diffs, computed once (jsondiff recomputes them while backtracking; they are deterministic).
  const pair: Scored[][] = X.map((x) => Y.map((y) => objDiff(x, y)));
  const C: number[][] = Array.from({ length: m + 1 }, () => new Array<number>(n + 1).fill(0));
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const s = pair[i - 1][j - 1][1];
      C[i][j] = Math.max(C[i][j - 1], C[i - 1][j], C[i - 1][j - 1] + s);
    }
  }
  // Backtrack from the end, as _list_diff_0 does, then replay in forward order.
  const steps: [sign: number, value: unknown, pos: number, s: number][] = [];
  let i = m;
  let j = n;
  for (;;) {
    if (i > 0 && j > 0) {
      const [d, s] = pair[i - 1][j - 1];
      if (s > 0 && C[i][j] === C[i - 1][j - 1] + s) {
        steps.push([0, d, j - 1, s]);
        i -= 1;
        j -= 1;
        continue;
      }
    }
    if (j > 0 && (i === 0 || C[i][j - 1] >= C[i - 1][j])) {
      steps.push([1, Y[j - 1], j - 1, 0.0]);
      j -= 1;
      continue;
    }
    if (i > 0 && (j === 0 || C[i][j - 1] < C[i - 1][j])) {
      steps.push([-1, X[i - 1], i - 1, 0.0]);
      i -= 1;
      continue;
    }
    break;
  }
  const inserted: PyTuple[] = [];
  const deleted: number[] = [];
  const changed = new PyDict();
  let totS = 0.0;
  for (const [sign, value, pos, s] of steps.reverse()) {
    if (sign === 1) inserted.push(new PyTuple([pos, value]));
    else if (sign === -1) deleted.unshift(pos);
    else if (sign === 0 && s < 1) changed.entries.set(pos, value);
    totS += s;
  }
  const totN = m + inserted.length;
  const s = totN === 0 ? 1.0 : totS / totN;
  if (s === 0.0) return [replaced(Y), s];
  if (s === 1.0 && inserted.length === 0 && changed.entries.size === 0 && deleted.length === 0)
    return [new PyDict(), s];
  if (inserted.length > 0) changed.entries.set(INSERT, inserted);
  if (deleted.length > 0) changed.entries.set(DELETE, deleted);
  return [changed, s];
}

function objDiff(a: unknown, b: unknown): Scored {
  if (isJsonObject(a) && isJsonObject(b)) return dictDiff(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return listDiff(a, b);
  if (!pyEqual(a, b)) return [emitValueDiff(b, 0.0), 0.0];
  return [emitValueDiff(b, 1.0), 1.0];
}

/** jsondiff.diff(a, b): the compact edit script that turns `a` into `b`. */
export function jsondiff(a: unknown, b: unknown): unknown {
  return objDiff(a, b)[0];
}

/** jsondiff.similarity(a, b). */
export function jsonSimilarity(a: unknown, b: unknown): number {
  return objDiff(a, b)[1];
}

function dictValues(d: unknown): unknown[] {
  return d instanceof PyDict ? [...d.entries.values()] : Object.values(d as JsonObject);
}

/**
 * llama-cookbook's count_differences: every scalar under a dict key counts 1, dicts recurse, lists and tuples
 * sum their items, and a scalar inside a list counts 0 (so deleted keys and scalars inserted into lists are free).
 */
export function countDifferences(d: unknown): number {
  let count = 0;
  if (Array.isArray(d)) for (const item of d) count += countDifferences(item);
  if (d instanceof PyTuple) for (const item of d.items) count += countDifferences(item);
  if (isPyDict(d)) {
    for (const value of dictValues(d)) {
      if (isPyDict(value)) count += countDifferences(value);
      else if (Array.isArray(value)) for (const v of value) count += countDifferences(v);
      else count += 1;
    }
  }
  return count;
}

/** llama-cookbook's count_total_fields: the ground truth's scalar leaves, skipping keys that contain "__". */
export function countTotalFields(obj: unknown): number {
  let count = 0;
  const traverse = (current: unknown): void => {
    if (!pyTruthy(current) || typeof current !== 'object' || current === null) return;
    if (Array.isArray(current)) {
      for (const item of current) {
        if (typeof item === 'object' && item !== null) traverse(item);
        else count += 1;
      }
    } else {
      for (const [key, value] of Object.entries(current as JsonObject)) {
        if (key.includes('__')) continue;
        if (value === null || typeof value !== 'object') count += 1;
        else traverse(value);
      }
    }
  };
  traverse(obj);
  return count;
}
