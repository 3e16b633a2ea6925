/**
 * Graders of free text against reference strings: exact_match (lm-eval-harness's exact_match with its
 * normalisation options), contains, regex (lm-eval's regex filter: extract, then exact match) and
 * line_accuracy (answers given one per line).
 */

import {
  normalizeText,
  rateOf,
  referenceStrings,
  type TextNormalization,
  textNormalization,
} from './normalize.ts';
import type { GraderOptions } from './options.ts';
import { pyFindall, pyRegex, pyStrip } from './python-compat.ts';
import type { GradeAggregate, GradeInput, Grader, RowGrade } from './types.ts';

function firstMatch(prediction: string, references: readonly string[], n: TextNormalization) {
  const pred = normalizeText(prediction, n);
  const refs = references.map((r) => normalizeText(r, n));
  return { pred, refs, index: refs.indexOf(pred) };
}

export function exactMatchGrader(options: GraderOptions, context: string): Grader {
  const n = textNormalization(options, context);
  return {
    name: 'exact_match',
    needs: 'generation',
    gradeRow(input: GradeInput): RowGrade {
      const { pred, index } = firstMatch(input.prediction, referenceStrings(input.reference), n);
      return {
        score: index >= 0 ? 1 : 0,
        details: { normalized: pred, matched_reference: index >= 0 ? index : null },
      };
    },
    aggregate(rows): GradeAggregate {
      return { metrics: { exact_match: meanScore(rows) }, topline: 'exact_match', n: rows.length };
    },
  };
}

const WORD = /[\p{L}\p{N}_]/u;

export function containsGrader(options: GraderOptions, context: string): Grader {
  const n = textNormalization(options, context);
  const wholeWord = options.bool('whole_word');
  const found = (haystack: string, needle: string): boolean => {
    if (needle.length === 0) return false; // an empty reference would match everything
    for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) {
      if (!wholeWord) return true;
      const before = at > 0 ? haystack[at - 1] : '';
      const after = haystack[at + needle.length] ?? '';
      const edgeOk = (c: string, inner: string) => c === '' || !WORD.test(c) || !WORD.test(inner);
      if (edgeOk(before, needle[0]) && edgeOk(after, needle[needle.length - 1])) return true;
    }
    return false;
  };
  return {
    name: 'contains',
    needs: 'generation',
    gradeRow(input) {
      const pred = normalizeText(input.prediction, n);
      const refs = referenceStrings(input.reference).map((r) => normalizeText(r, n));
      const index = refs.findIndex((r) => found(pred, r));
      return {
        score: index >= 0 ? 1 : 0,
        details: { normalized: pred, matched_reference: index >= 0 ? index : null },
      };
    },
    aggregate(rows) {
      return { metrics: { contains: meanScore(rows) }, topline: 'contains', n: rows.length };
    },
  };
}

/** lm-eval-harness's RegexFilter: findall, take match `group_select` (negative counts from the end), the first
 * non-empty group of a tuple, strip; the fallback when nothing matched. */
export function extractByRegex(
  regex: RegExp,
  groupSelect: number,
  fallback: string,
  text: string,
): { value: string; matched: boolean } {
  const matches = pyFindall(regex, text);
  const at = groupSelect < 0 ? matches.length + groupSelect : groupSelect;
  if (matches.length === 0 || at < 0 || at >= matches.length) return { value: fallback, matched: false };
  let m = matches[at];
  if (Array.isArray(m)) {
    const nonEmpty = m.filter((g) => g.length > 0);
    if (nonEmpty.length === 0) return { value: fallback, matched: false };
    m = nonEmpty[0];
  }
  return { value: pyStrip(m), matched: true };
}

export function regexGrader(options: GraderOptions, context: string): Grader {
  const n = textNormalization(options, context);
  const regex = pyRegex(options.str('regex_pattern'), 'g', `${context}: option 'regex_pattern'`);
  const groupSelect = options.num('group_select');
  const fallback = options.str('fallback');
  return {
    name: 'regex',
    needs: 'generation',
    gradeRow(input) {
      const extracted = extractByRegex(regex, groupSelect, fallback, input.prediction);
      const { pred, index } = firstMatch(extracted.value, referenceStrings(input.reference), n);
      return {
        score: index >= 0 ? 1 : 0,
        details: { extracted: extracted.value, matched: extracted.matched, normalized: pred },
      };
    },
    aggregate(rows) {
      return {
        metrics: { exact_match: meanScore(rows), extracted_rate: rateOf(rows, 'matched') },
        topline: 'exact_match',
        n: rows.length,
      };
    },
  };
}

/** Non-empty lines, normalised. */
function lines(text: string, n: TextNormalization): string[] {
  return text
    .split(/\r\n|\r|\n/)
    .map((l) => normalizeText(l, n))
    .filter((l) => l.length > 0);
}

/**
 * Answers one per line (e.g. the grid world's multi-question rows): the row's score is the fraction of
 * reference lines equal to the predicted line at the same position, after normalisation.
 */
export function lineAccuracyGrader(options: GraderOptions, context: string): Grader {
  const n = textNormalization(options, context);
  return {
    name: 'line_accuracy',
    needs: 'generation',
    gradeRow(input) {
      const refs = referenceStrings(input.reference).flatMap((r) => lines(r, n));
      const preds = lines(input.prediction, n);
      const correct = refs.filter((r, i) => preds[i] === r).length;
      const score = refs.length === 0 ? (preds.length === 0 ? 1 : 0) : correct / refs.length;
      return {
        score,
        details: {
          correct_lines: correct,
          reference_lines: refs.length,
          predicted_lines: preds.length,
          all_correct: score === 1,
        },
      };
    },
    aggregate(rows) {
      return {
        metrics: { line_accuracy: meanScore(rows), all_lines_correct: rateOf(rows, 'all_correct') },
        topline: 'line_accuracy',
        n: rows.length,
      };
    },
  };
}

export function meanScore(rows: readonly RowGrade[]): number {
  return rows.length === 0 ? 0 : rows.reduce((s, r) => s + r.score, 0) / rows.length;
}
