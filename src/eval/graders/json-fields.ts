/**
 * Field-level comparison of a predicted JSON value with the ground truth. Both are walked as trees of field
 * paths (`a.b`, list elements as `a[]`); each ground-truth leaf with a value is a true positive (equal after
 * normalisation), a substitution (a false positive and a false negative) or a false negative (missing or
 * empty); predicted leaves with a value where the truth has none are false positives. Empty means null, or a
 * string such as "" or "N/A". Lists of scalars compare as multisets; lists of objects (or lists) are matched
 * element to element by an optimal assignment (Hungarian algorithm) on pairwise field F1.
 */
import { munkres } from 'munkres';
import { parseNumberText, withinTolerance } from './numeric.ts';
import { casefold, collapseWhitespace, removePunctuation } from './python-compat.ts';

export interface JsonCompareSettings {
  absTol: number;
  relTol: number;
  stripPunctuation: boolean;
  dates: boolean;
  /** Normalised strings that mean "no value". */
  nullStrings: ReadonlySet<string>;
}

export interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

export interface Mismatch {
  path: string;
  kind: 'missing' | 'wrong' | 'extra';
  expected?: unknown;
  predicted?: unknown;
}

/** Counts per field path, plus the mismatches seen (for the row's details). */
export class FieldTally {
  readonly fields = new Map<string, Counts>();
  readonly mismatches: Mismatch[] = [];

  add(path: string, kind: keyof Counts, n = 1): void {
    let c = this.fields.get(path);
    if (!c) {
      c = { tp: 0, fp: 0, fn: 0 };
      this.fields.set(path, c);
    }
    c[kind] += n;
  }

  merge(other: FieldTally): void {
    for (const [path, c] of other.fields) {
      this.add(path, 'tp', c.tp);
      this.add(path, 'fp', c.fp);
      this.add(path, 'fn', c.fn);
    }
    this.mismatches.push(...other.mismatches);
  }

  totals(): Counts {
    const t = { tp: 0, fp: 0, fn: 0 };
    for (const c of this.fields.values()) {
      t.tp += c.tp;
      t.fp += c.fp;
      t.fn += c.fn;
    }
    return t;
  }
}

/** F1 = 2TP / (2TP + FP + FN), and 1 when there is nothing to find and nothing was found. */
export function f1Of(c: Counts): number {
  const d = 2 * c.tp + c.fp + c.fn;
  return d === 0 ? 1 : (2 * c.tp) / d;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || typeof v !== 'object';
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
const elements = (path: string) => `${path}[]`;
const leafPath = (path: string) => path || '$';

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

/** 1..12 for a month's name or an abbreviation of at least three letters ("sep", "sept"), else 0. */
function monthNumber(name: string): number {
  if (name.length < 3) return 0;
  return MONTHS.findIndex((m) => m.startsWith(name)) + 1;
}

/** An unambiguous date as YYYY-MM-DD: ISO or Y/M/D digits, or a month name ("March 5, 2024", "5 Mar 2024"). */
export function isoDate(s: string): string | null {
  const valid = (y: number, m: number, d: number) =>
    m >= 1 && m <= 12 && d >= 1 && d <= 31
      ? `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`
      : null;
  let m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$/.exec(s);
  if (m) return valid(+m[1], +m[2], +m[3]);
  m = /^([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})$/.exec(s);
  if (m && monthNumber(m[1])) return valid(+m[3], monthNumber(m[1]), +m[2]);
  m = /^(\d{1,2})(?:st|nd|rd|th)? ([a-z]+)\.?,? (\d{4})$/.exec(s);
  if (m && monthNumber(m[2])) return valid(+m[3], monthNumber(m[2]), +m[1]);
  return null;
}

/** A string's comparison form: NFKC, casefolded, whitespace collapsed, punctuation stripped if asked. */
export function normalizeJsonString(s: string, stripPunctuation: boolean): string {
  const folded = collapseWhitespace(casefold(s.normalize('NFKC')));
  return stripPunctuation ? collapseWhitespace(removePunctuation(folded)) : folded;
}

export class JsonComparer {
  constructor(private readonly settings: JsonCompareSettings) {}

  normalizeString(s: string): string {
    return normalizeJsonString(s, this.settings.stripPunctuation);
  }

  /** null, or a string that means no value. */
  isEmpty(v: unknown): boolean {
    return (
      v === null ||
      v === undefined ||
      (typeof v === 'string' && this.settings.nullStrings.has(this.normalizeString(v)))
    );
  }

  scalarsEqual(gt: unknown, pred: unknown): boolean {
    const { absTol, relTol } = this.settings;
    const asNumber = (v: unknown) =>
      typeof v === 'number' ? v : typeof v === 'string' ? parseNumberText(v, { percent: 'strip' }) : null;
    const text = (v: unknown) => this.normalizeString(typeof v === 'string' ? v : String(v));
    if (typeof gt === 'number' || typeof pred === 'number') {
      const g = asNumber(gt);
      const p = asNumber(pred);
      return g !== null && p !== null && withinTolerance(p, g, absTol, relTol);
    }
    const g = text(gt);
    const p = text(pred);
    if (g === p) return true;
    const gn = asNumber(gt);
    const pn = asNumber(pred);
    if (gn !== null && pn !== null) return withinTolerance(pn, gn, absTol, relTol);
    if (this.settings.dates) {
      const gd = isoDate(g);
      return gd !== null && gd === isoDate(p);
    }
    return false;
  }

  /** Adds every leaf with a value under `value` as `kind` (a false positive or a false negative). */
  countAll(value: unknown, path: string, kind: 'fp' | 'fn', tally: FieldTally, note = true): void {
    if (Array.isArray(value)) {
      for (const v of value) this.countAll(v, elements(path), kind, tally, note);
    } else if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) this.countAll(v, join(path, k), kind, tally, note);
    } else if (!this.isEmpty(value)) {
      tally.add(leafPath(path), kind);
      if (note) {
        tally.mismatches.push(
          kind === 'fn'
            ? { path: leafPath(path), kind: 'missing', expected: value }
            : { path: leafPath(path), kind: 'extra', predicted: value },
        );
      }
    }
  }

  compare(gt: unknown, pred: unknown, path: string, tally: FieldTally): void {
    if (isObject(gt)) {
      if (isObject(pred)) {
        for (const [k, v] of Object.entries(gt)) this.compare(v, pred[k], join(path, k), tally);
        for (const [k, v] of Object.entries(pred))
          if (!Object.hasOwn(gt, k)) this.countAll(v, join(path, k), 'fp', tally);
      } else {
        this.countAll(gt, path, 'fn', tally);
        this.countAll(pred, path, 'fp', tally);
      }
      return;
    }
    if (Array.isArray(gt)) {
      if (Array.isArray(pred)) this.compareLists(gt, pred, elements(path), tally);
      else {
        this.countAll(gt, path, 'fn', tally);
        this.countAll(pred, path, 'fp', tally);
      }
      return;
    }
    const at = leafPath(path);
    if (this.isEmpty(gt)) {
      this.countAll(pred, path, 'fp', tally);
    } else if (this.isEmpty(pred)) {
      tally.add(at, 'fn');
      tally.mismatches.push({ path: at, kind: 'missing', expected: gt });
    } else if (isScalar(pred)) {
      if (this.scalarsEqual(gt, pred)) tally.add(at, 'tp');
      else {
        tally.add(at, 'fp');
        tally.add(at, 'fn');
        tally.mismatches.push({ path: at, kind: 'wrong', expected: gt, predicted: pred });
      }
    } else {
      tally.add(at, 'fn');
      tally.mismatches.push({ path: at, kind: 'wrong', expected: gt, predicted: pred });
      this.countAll(pred, path, 'fp', tally, false);
    }
  }

  private compareLists(gt: unknown[], pred: unknown[], path: string, tally: FieldTally): void {
    const gScalars = gt.filter((v) => isScalar(v) && !this.isEmpty(v));
    const pScalars = pred.filter((v) => isScalar(v) && !this.isEmpty(v));
    const used = new Array<boolean>(pScalars.length).fill(false);
    const at = leafPath(path);
    for (const g of gScalars) {
      const j = pScalars.findIndex((p, k) => !used[k] && this.scalarsEqual(g, p));
      if (j >= 0) {
        used[j] = true;
        tally.add(at, 'tp');
      } else {
        tally.add(at, 'fn');
        tally.mismatches.push({ path: at, kind: 'missing', expected: g });
      }
    }
    pScalars.forEach((p, k) => {
      if (!used[k]) {
        tally.add(at, 'fp');
        tally.mismatches.push({ path: at, kind: 'extra', predicted: p });
      }
    });

    const gItems = gt.filter((v) => !isScalar(v));
    const pItems = pred.filter((v) => !isScalar(v));
    const matched = this.assign(gItems, pItems, path);
    const gDone = new Set<number>();
    const pDone = new Set<number>();
    for (const { g, p, tally: pairTally } of matched) {
      tally.merge(pairTally);
      gDone.add(g);
      pDone.add(p);
    }
    gItems.forEach((v, i) => {
      if (!gDone.has(i)) this.countAll(v, path, 'fn', tally);
    });
    pItems.forEach((v, j) => {
      if (!pDone.has(j)) this.countAll(v, path, 'fp', tally);
    });
  }

  /** The pairing of ground-truth and predicted elements with the largest total field F1. */
  private assign(gItems: unknown[], pItems: unknown[], path: string) {
    if (gItems.length === 0 || pItems.length === 0) return [];
    const pairs = gItems.map((g) =>
      pItems.map((p) => {
        const t = new FieldTally();
        this.compare(g, p, path, t);
        return t;
      }),
    );
    const cost = pairs.map((row) => row.map((t) => 1 - f1Of(t.totals())));
    return munkres(cost).map(([g, p]) => ({ g, p, tally: pairs[g][p] }));
  }

  /** Paths of the leaves with a value (for the key-set Jaccard index). */
  leafPaths(value: unknown, path = '', out = new Set<string>()): Set<string> {
    if (Array.isArray(value)) for (const v of value) this.leafPaths(v, elements(path), out);
    else if (isObject(value))
      for (const [k, v] of Object.entries(value)) this.leafPaths(v, join(path, k), out);
    else if (!this.isEmpty(value)) out.add(leafPath(path));
    return out;
  }
}
