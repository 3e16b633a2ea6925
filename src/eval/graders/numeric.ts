/**
 * The numeric grader: read a number from the prediction (currency symbols, thousands commas and % stripped)
 * and compare it with the reference within a tolerance: |p − t| ≤ max(abs_tol, rel_tol·|t|).
 */
import { TlabError } from '../../util/errors.ts';
import { describeJson } from '../../util/json-file.ts';
import { rateOf } from './normalize.ts';
import type { GraderOptions } from './options.ts';
import { meanScore } from './text.ts';
import type { Grader } from './types.ts';

export interface NumberParsing {
  /** 'strip': "50%" is 50; 'fraction': "50%" is 0.5. */
  percent: 'strip' | 'fraction';
}

// A sign, an optional currency symbol, digits with well-formed thousands commas, a fraction, an exponent, a %.
const NUMBER_BODY = String.raw`([-+]?)\p{Sc}?\s?([-+]?)((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE]([-+]?\d+))?(\s?%)?`;
const WHOLE_NUMBER = new RegExp(`^${NUMBER_BODY}$`, 'u');
const ANY_NUMBER = new RegExp(`(?<![\\d.,])${NUMBER_BODY}`, 'gu');

function cleanForNumbers(text: string): string {
  // NFKC folds full-width digits; U+2212 is the typographic minus sign.
  return text
    .normalize('NFKC')
    .replace(/\u2212/g, '-')
    .trim();
}

function toNumber(m: RegExpExecArray | RegExpMatchArray, parsing: NumberParsing): number | null {
  const [, sign1, sign2, digits, exponent, percent] = m;
  if (sign1 && sign2) return null; // "-$-5"
  const sign = (sign1 || sign2) === '-' ? -1 : 1;
  let value = Number(`${digits.replace(/,/g, '')}${exponent === undefined ? '' : `e${exponent}`}`);
  if (!Number.isFinite(value)) return null;
  if (percent && parsing.percent === 'fraction') value /= 100;
  return sign * value;
}

/** The number that the whole text is ("$1,234.50", "-3.5e2", "12 %"), or null. */
export function parseNumberText(text: string, parsing: NumberParsing): number | null {
  const m = WHOLE_NUMBER.exec(cleanForNumbers(text));
  return m ? toNumber(m, parsing) : null;
}

/** Every number in free text, in order. */
export function numbersInText(text: string, parsing: NumberParsing): number[] {
  const out: number[] = [];
  for (const m of cleanForNumbers(text).matchAll(ANY_NUMBER)) {
    const v = toNumber(m, parsing);
    if (v !== null) out.push(v);
  }
  return out;
}

export function withinTolerance(p: number, t: number, absTol: number, relTol: number): boolean {
  return Math.abs(p - t) <= Math.max(absTol, relTol * Math.abs(t));
}

function referenceNumbers(reference: unknown, parsing: NumberParsing): number[] {
  const list = Array.isArray(reference) ? reference : [reference];
  const out: number[] = [];
  for (const r of list) {
    const v = typeof r === 'number' ? r : typeof r === 'string' ? parseNumberText(r, parsing) : null;
    if (v === null || !Number.isFinite(v))
      throw new TlabError(`reference: expected a number or a list of numbers, found ${describeJson(r)}`);
    out.push(v);
  }
  if (out.length === 0)
    throw new TlabError('reference: expected a number or a list of numbers, found an empty list');
  return out;
}

export function numericGrader(options: GraderOptions): Grader {
  const parsing: NumberParsing = { percent: options.str('percent') as NumberParsing['percent'] };
  const absTol = options.num('abs_tol');
  const relTol = options.num('rel_tol');
  const extract = options.str('extract');
  return {
    name: 'numeric',
    needs: 'generation',
    gradeRow(input) {
      const targets = referenceNumbers(input.reference, parsing);
      let parsed = parseNumberText(input.prediction, parsing);
      if (parsed === null) {
        const all = numbersInText(input.prediction, parsing);
        if (extract === 'first') parsed = all[0] ?? null;
        else if (extract === 'last') parsed = all.at(-1) ?? null;
        else if (all.length === 1) parsed = all[0];
      }
      if (parsed === null) return { score: 0, details: { parsed: null, parsed_ok: false } };
      const p = parsed;
      const errors = targets.map((t) => Math.abs(p - t));
      const best = errors.indexOf(Math.min(...errors));
      const ok = targets.some((t) => withinTolerance(p, t, absTol, relTol));
      return {
        score: ok ? 1 : 0,
        details: { parsed: p, parsed_ok: true, closest_reference: targets[best], abs_error: errors[best] },
      };
    },
    aggregate(rows) {
      return {
        metrics: { accuracy: meanScore(rows), parsed_rate: rateOf(rows, 'parsed_ok') },
        topline: 'accuracy',
        n: rows.length,
      };
    },
  };
}
