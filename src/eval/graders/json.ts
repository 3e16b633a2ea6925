/**
 * The JSON grader (alias JSONGrader, the llama-cookbook name). Topline `field_f1_micro`: field-level F1 summed
 * over every row's field counts. Also per-field P/R/F1, macro F1 over fields, exact-document match, key-set
 * Jaccard, `invalid_json_rate` (answers with no parseable JSON score 0 and are counted here, never repaired), and
 * the llama-cookbook tool's own score as `cookbook_accuracy` / `cookbook_error_rate`.
 */
import { TlabError } from '../../util/errors.ts';
import { describeJson } from '../../util/json-file.ts';
import { cookbookAggregate, cookbookScore } from './json-cookbook.ts';
import { extractJson, jsonDepth, MAX_JSON_DEPTH } from './json-extract.ts';
import { type Counts, FieldTally, f1Of, JsonComparer, normalizeJsonString } from './json-fields.ts';
import { mean, rateOf } from './normalize.ts';
import type { GraderOptions } from './options.ts';
import type { FieldScore, GradeAggregate, Grader, RowGrade } from './types.ts';

/** Mismatches kept per row in the details (the counts are always complete). */
const MAX_MISMATCHES = 50;

function referenceValue(reference: unknown, unwrap: boolean): unknown {
  let value = reference;
  if (typeof reference === 'string') {
    try {
      value = JSON.parse(reference);
    } catch (error) {
      throw new TlabError(
        `reference: not valid JSON (${(error as Error).message}): ${describeJson(reference)}`,
      );
    }
  }
  if (value === undefined)
    throw new TlabError('reference: missing (the JSON grader needs the expected JSON)');
  if (jsonDepth(value) > MAX_JSON_DEPTH)
    throw new TlabError(`reference: nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (
    unwrap &&
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.hasOwn(value, 'gt_parse')
  )
    return (value as Record<string, unknown>).gt_parse;
  return value;
}

function scoreOf(c: Counts): FieldScore {
  return {
    ...c,
    precision: c.tp + c.fp === 0 ? 0 : c.tp / (c.tp + c.fp),
    recall: c.tp + c.fn === 0 ? 0 : c.tp / (c.tp + c.fn),
    f1: f1Of(c),
  };
}

export function jsonGrader(options: GraderOptions): Grader {
  const stripPunctuation = options.bool('strip_punctuation');
  const comparer = new JsonComparer({
    absTol: options.num('abs_tol'),
    relTol: options.num('rel_tol'),
    stripPunctuation,
    dates: options.bool('dates'),
    // In their comparison form, so "N/A" and "n/a" are one entry.
    nullStrings: new Set(options.strs('null_strings').map((s) => normalizeJsonString(s, stripPunctuation))),
  });
  const unwrap = options.bool('unwrap_gt_parse');
  const withCookbook = options.bool('cookbook');
  return {
    name: 'json',
    needs: 'generation',
    gradeRow(input): RowGrade {
      const gt = referenceValue(input.reference, unwrap);
      const expect = Array.isArray(gt)
        ? 'array'
        : typeof gt === 'object' && gt !== null
          ? 'object'
          : undefined;
      const found = extractJson(input.prediction, expect);
      const tally = new FieldTally();
      if (found.ok) comparer.compare(gt, found.value, '', tally);
      else comparer.countAll(gt, '', 'fn', tally, false);
      const totals = scoreOf(tally.totals());
      const exact = found.ok && totals.fp === 0 && totals.fn === 0;
      let jaccard = 0;
      if (found.ok) {
        const a = comparer.leafPaths(gt);
        const b = comparer.leafPaths(found.value);
        const union = new Set([...a, ...b]).size;
        jaccard = union === 0 ? 1 : [...a].filter((p) => b.has(p)).length / union;
      }
      const details: Record<string, unknown> = {
        status: found.ok ? 'ok' : 'invalid_json',
        json_source: found.source,
        ...(found.ok ? {} : { json_error: found.error }),
        invalid_json: !found.ok,
        tp: totals.tp,
        fp: totals.fp,
        fn: totals.fn,
        precision: totals.precision,
        recall: totals.recall,
        f1: totals.f1,
        exact_match: exact,
        key_jaccard: jaccard,
        field_counts: Object.fromEntries(tally.fields),
        mismatches: tally.mismatches.slice(0, MAX_MISMATCHES),
      };
      if (withCookbook) {
        const c = cookbookScore(input.reference, input.prediction);
        details.cookbook_score = c.score;
        details.cookbook = c;
      }
      return { score: found.ok ? totals.f1 : 0, details };
    },
    aggregate(rows): GradeAggregate {
      const perField = new FieldTally();
      for (const r of rows) {
        const counts = r.details.field_counts as Record<string, Counts> | undefined;
        for (const [path, c] of Object.entries(counts ?? {})) {
          perField.add(path, 'tp', c.tp);
          perField.add(path, 'fp', c.fp);
          perField.add(path, 'fn', c.fn);
        }
      }
      const micro = scoreOf(perField.totals());
      const fields = Object.fromEntries([...perField.fields].map(([p, c]) => [p, scoreOf(c)]));
      const metrics: Record<string, number> = {
        field_f1_micro: micro.f1,
        field_precision_micro: micro.precision,
        field_recall_micro: micro.recall,
        field_f1_macro: mean(Object.values(fields).map((f) => f.f1)),
        doc_f1_mean: mean(rows.map((r) => r.score)),
        exact_match: rateOf(rows, 'exact_match'),
        key_jaccard: mean(rows.map((r) => r.details.key_jaccard as number)),
        invalid_json_rate: rateOf(rows, 'invalid_json'),
      };
      if (withCookbook) {
        const c = cookbookAggregate(rows.map((r) => r.details.cookbook_score as number));
        metrics.cookbook_accuracy = c.accuracy;
        metrics.cookbook_error_rate = c.error_rate;
      }
      return { metrics, topline: 'field_f1_micro', n: rows.length, fields };
    },
  };
}
