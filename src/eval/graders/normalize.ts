/**
 * Helpers shared by the graders: the exact-match text normalisation (lm-eval-harness's exact_match options plus
 * articles, whitespace and Unicode NFKC), reading references as lists of strings, and means.
 */
import { TlabError } from '../../util/errors.ts';
import { describeJson } from '../../util/json-file.ts';
import type { GraderOptions } from './options.ts';
import { collapseWhitespace, pyRegex, removePunctuation, replaceArticles } from './python-compat.ts';
import type { OptionSpec, RowGrade } from './types.ts';

/** The options of exact_match, contains and regex (lm-eval-harness names where it has them). */
export const TEXT_NORMALIZATION_OPTIONS: readonly OptionSpec[] = [
  { name: 'ignore_case', type: 'boolean', default: false, description: 'lower-case both sides' },
  {
    name: 'ignore_punctuation',
    type: 'boolean',
    default: false,
    description: "remove ASCII punctuation (Python's string.punctuation)",
  },
  { name: 'ignore_numbers', type: 'boolean', default: false, description: 'remove the digits 0-9' },
  {
    name: 'regexes_to_ignore',
    type: 'string[]',
    default: [],
    description: 'Python-style regular expressions whose matches are removed first',
  },
  {
    name: 'ignore_articles',
    type: 'boolean',
    default: false,
    description: "remove the words 'a', 'an', 'the' (any case), as SQuAD does",
  },
  {
    name: 'whitespace',
    type: 'boolean',
    default: true,
    description: 'trim and collapse runs of whitespace (off = raw lm-eval exact_match)',
  },
  {
    name: 'unicode_nfkc',
    type: 'boolean',
    default: true,
    description: 'Unicode NFKC normalisation first (full-width letters, ligatures; off = raw lm-eval)',
  },
];

export interface TextNormalization {
  ignoreCase: boolean;
  ignorePunctuation: boolean;
  ignoreNumbers: boolean;
  regexesToIgnore: RegExp[];
  ignoreArticles: boolean;
  whitespace: boolean;
  nfkc: boolean;
}

export function textNormalization(options: GraderOptions, context: string): TextNormalization {
  return {
    ignoreCase: options.bool('ignore_case'),
    ignorePunctuation: options.bool('ignore_punctuation'),
    ignoreNumbers: options.bool('ignore_numbers'),
    regexesToIgnore: options
      .strs('regexes_to_ignore')
      .map((p) => pyRegex(p, 'g', `${context}: option 'regexes_to_ignore'`)),
    ignoreArticles: options.bool('ignore_articles'),
    whitespace: options.bool('whitespace'),
    nfkc: options.bool('unicode_nfkc'),
  };
}

/**
 * Normalises text in lm-eval-harness's order (regexes removed, lower-case, punctuation, digits), with NFKC
 * first and articles and whitespace last.
 */
export function normalizeText(text: string, n: TextNormalization): string {
  let s = n.nfkc ? text.normalize('NFKC') : text;
  for (const r of n.regexesToIgnore) s = s.replace(r, '');
  if (n.ignoreCase) s = s.toLowerCase();
  if (n.ignorePunctuation) s = removePunctuation(s);
  if (n.ignoreNumbers) s = s.replace(/[0-9]/g, '');
  if (n.ignoreArticles) s = replaceArticles(s, ' ', true);
  if (n.whitespace) s = collapseWhitespace(s);
  return s;
}

/** The acceptable answers of a row: a string, a number or boolean (as text), or a non-empty list of those. */
export function referenceStrings(reference: unknown): string[] {
  const one = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  const single = one(reference);
  if (single !== undefined) return [single];
  if (Array.isArray(reference) && reference.length > 0) {
    const all = reference.map(one);
    if (all.every((v) => v !== undefined)) return all as string[];
  }
  throw new TlabError(
    `reference: expected a string or a non-empty list of strings, found ${describeJson(reference)}`,
  );
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** The mean of a numeric detail over rows (rows without it are skipped). */
export function meanDetail(rows: readonly RowGrade[], key: string): number {
  const values: number[] = [];
  for (const r of rows) {
    const v = r.details[key];
    if (typeof v === 'number') values.push(v);
  }
  return mean(values);
}

/** The fraction of rows whose detail `key` is true. */
export function rateOf(rows: readonly RowGrade[], key: string): number {
  if (rows.length === 0) return 0;
  return rows.filter((r) => r.details[key] === true).length / rows.length;
}
