/**
 * The JSON grader. Field-level scores: hand-worked cases (stated in each) and Donut's JSONParseEvaluator.cal_f1
 * where its rules coincide with ours; the assignment of list elements against scipy's linear_sum_assignment.
 * The llama-cookbook score: its JSONGrader, json_repair v0.52.3 and jsondiff 2.2.1 run as written. All
 * reference values come from test/fixtures/eval/graders/make_fixtures.py.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { munkres } from 'munkres';
import { createGrader } from '../../src/eval/graders/index.ts';
import { cookbookScore, repairJson } from '../../src/eval/graders/json-cookbook.ts';
import { extractJson } from '../../src/eval/graders/json-extract.ts';
import {
  countDifferences,
  countTotalFields,
  jsondiff,
  jsonSimilarity,
  pyTruthy,
} from '../../src/eval/graders/jsondiff.ts';
import type { RowGrade } from '../../src/eval/graders/types.ts';

const ref = JSON.parse(
  readFileSync(new URL('../fixtures/eval/graders/reference.json', import.meta.url), 'utf8'),
);
const json = createGrader('JSONGrader');
const grade = (prediction: string, reference: unknown, g = json) => g.gradeRow({ prediction, reference });
const counts = (r: RowGrade) => [r.details.tp, r.details.fp, r.details.fn];

test('extraction: whole answer, last ```json block, any fence, JSON in prose; malformed JSON is invalid_json', () => {
  const two = 'first:\n```json\n{"a": 1}\n```\nfixed:\n```json\n{"a": 2}\n```\n';
  assert.deepEqual(extractJson(two), { ok: true, value: { a: 2 }, source: 'fence_json' });
  assert.deepEqual(extractJson('```\n[1, 2]\n```'), { ok: true, value: [1, 2], source: 'fence' });
  assert.deepEqual(extractJson('Sure! {"a": {"b": [1, "}"]}} hope this helps'), {
    ok: true,
    value: { a: { b: [1, '}'] } },
    source: 'prose',
  });
  // With an object expected, a bracketed citation before it is passed over.
  assert.deepEqual(
    extractJson('see [1] below: {"a": 1}', 'object').ok && extractJson('see [1] below: {"a": 1}', 'object'),
    {
      ok: true,
      value: { a: 1 },
      source: 'prose',
    },
  );
  assert.deepEqual(extractJson('  {"a": 1}  '), { ok: true, value: { a: 1 }, source: 'whole' });
  // A last fence left open (generation stopped at a "```" stop string) still counts when its JSON is whole.
  assert.deepEqual(extractJson('Here:\n```json\n{"a": 1}\n'), {
    ok: true,
    value: { a: 1 },
    source: 'fence_json',
  });
  assert.deepEqual(extractJson('```json\n{"a": 0}\n```\n```json\n{"a": 1}'), {
    ok: true,
    value: { a: 1 },
    source: 'fence_json',
  });
  for (const bad of [
    '{"a": 1,',
    '```json\n{"a": 1',
    '```json\n{a: 1}\n```',
    'no json at all',
    "{'a': 1}",
    '{"a": {"b": 1}, "c": ',
  ]) {
    const r = grade(bad, { a: 1 });
    assert.equal(r.details.status, 'invalid_json', bad);
    assert.equal(r.score, 0, bad);
    assert.deepEqual(counts(r), [0, 0, 1], bad); // nothing extracted: the one field is a false negative
  }
  // A truncated outer object must not yield an inner one that happens to parse.
  assert.equal(extractJson('{"a": {"b": 1}, "c": ').ok, false);
});

test('nested objects: strings casefolded and whitespace-collapsed, wrong = FP + FN, missing = FN, extra = FP', () => {
  const gt = { v: { name: 'Widget Co', addr: { city: 'Lyon', zip: '69001' } } };
  const r = grade(JSON.stringify({ v: { name: '  widget   CO ', addr: { city: 'Paris' } }, note: 'x' }), gt);
  // name TP; city wrong (FP, FN); zip missing (FN); note extra (FP): F1 = 2·1 / (2·1 + 2 + 2).
  assert.deepEqual(counts(r), [1, 2, 2]);
  assert.equal(r.score, 2 / 6);
  assert.deepEqual(r.details.field_counts, {
    'v.name': { tp: 1, fp: 0, fn: 0 },
    'v.addr.city': { tp: 0, fp: 1, fn: 1 },
    'v.addr.zip': { tp: 0, fp: 0, fn: 1 },
    note: { tp: 0, fp: 1, fn: 0 },
  });
  const kinds = (r.details.mismatches as { path: string; kind: string }[])
    .map((m) => `${m.path}:${m.kind}`)
    .sort();
  assert.deepEqual(kinds, ['note:extra', 'v.addr.city:wrong', 'v.addr.zip:missing']);
  assert.equal(r.details.exact_match, false);
});

test('lists of objects are matched by optimal assignment; lists of scalars compare as multisets', () => {
  const gt = {
    items: [
      { d: 'Bolt', q: 10 },
      { d: 'Nut', q: 20 },
    ],
  };
  // Swapped order: Nut↔Nut (all right) and Bolt↔bolt (d right, q wrong): TP 3, FP 1, FN 1, F1 = 6/8.
  const r = grade(
    JSON.stringify({
      items: [
        { d: 'Nut', q: 20 },
        { d: 'bolt', q: 11 },
      ],
    }),
    gt,
  );
  assert.deepEqual(counts(r), [3, 1, 1]);
  assert.equal(r.score, 0.75);
  assert.deepEqual(r.details.field_counts, {
    'items[].d': { tp: 2, fp: 0, fn: 0 },
    'items[].q': { tp: 1, fp: 1, fn: 1 },
  });
  // One element missing: its two fields are false negatives.
  assert.deepEqual(counts(grade(JSON.stringify({ items: [{ d: 'Nut', q: 20 }] }), gt)), [2, 0, 2]);
  // Multisets: ["a","b","b"] vs ["b","a","c"]: a and one b found, one b missing, c extra.
  assert.deepEqual(counts(grade('{"t": ["b", "a", "c"]}', { t: ['a', 'b', 'b'] })), [2, 1, 1]);
  // A list where an object is expected: the truth is missing, the prediction's leaves are extra.
  assert.deepEqual(counts(grade('{"v": ["x"]}', { v: { a: 'x' } })), [0, 1, 1]);
});

test('numbers: currency, commas and % stripped, tolerances; unicode NFKC and casefolding; null, "" and N/A', () => {
  assert.equal(grade('{"total": "$1,234.50"}', { total: 1234.5 }).score, 1);
  assert.equal(grade('{"total": 1234.6}', { total: 1234.5 }).score, 0);
  assert.equal(
    grade('{"total": 1234.6}', { total: 1234.5 }, createGrader('json', { abs_tol: 0.2 })).score,
    1,
  );
  assert.equal(grade('{"rate": 1.01}', { rate: 1 }, createGrader('json', { rel_tol: 0.02 })).score, 1);
  assert.equal(grade('{"pct": "12%"}', { pct: 12 }).score, 1);
  assert.equal(grade('{"name": "Ｃａｆé"}', { name: 'café' }).score, 1); // full-width letters
  assert.equal(grade('{"name": "cafe\u0301"}', { name: 'caf\u00e9' }).score, 1); // decomposed é
  assert.equal(grade('{"street": "STRASSE"}', { street: 'Straße' }).score, 1); // casefold ß → ss
  assert.equal(grade('{"a": "N/A", "b": "x"}', { a: null, b: 'x' }).details.exact_match, true);
  assert.equal(grade('{"a": "", "b": "x"}', { a: 'n/a', b: 'x' }).score, 1);
  assert.deepEqual(counts(grade('{"a": "something", "b": "x"}', { a: null, b: 'x' })), [1, 1, 0]);
  assert.deepEqual(counts(grade('{"b": "x"}', { a: 'v', b: 'x' })), [1, 0, 1]);
  assert.equal(grade('{"d": "March 5, 2024"}', { d: '2024-03-05' }).score, 1);
  assert.equal(grade('{"d": "5 Mar 2024"}', { d: '2024-03-05' }).score, 1);
  assert.equal(grade('{"d": "03/05/2024"}', { d: '2024-03-05' }).score, 0); // ambiguous d/m is not guessed
  assert.equal(
    grade('{"d": "March 5, 2024"}', { d: '2024-03-05' }, createGrader('json', { dates: false })).score,
    0,
  );
  assert.equal(grade('{"ok": "true"}', { ok: true }).score, 1);
  assert.equal(
    grade('{"name": "a.b"}', { name: 'ab' }, createGrader('json', { strip_punctuation: true })).score,
    1,
  );
});

test('references: a JSON string or a value; gt_parse unwrapped; a reference that is not JSON names the field', () => {
  const gt = JSON.stringify({ gt_parse: { a: 1 } });
  assert.equal(grade('{"a": 1}', gt).score, 1);
  assert.equal(grade('{"a": 1}', gt, createGrader('json', { unwrap_gt_parse: false })).score, 0);
  assert.throws(() => grade('{}', '{not json'), /reference: not valid JSON/);
});

test("field scores agree with Donut's JSONParseEvaluator.cal_f1 where the rules coincide", () => {
  const { docs, micro_f1 } = ref.donut_f1;
  assert.ok(docs.length >= 8);
  const rows = docs.map((d: { pred: unknown; gt: unknown; f1: number }) => {
    const r = grade(JSON.stringify(d.pred), d.gt);
    assert.ok(Math.abs(r.score - d.f1) < 1e-12, `${JSON.stringify(d)}: ${r.score}`);
    return r;
  });
  assert.ok(Math.abs(json.aggregate(rows).metrics.field_f1_micro - micro_f1) < 1e-12);
});

test('the assignment is optimal: munkres gives the same total cost as scipy linear_sum_assignment', () => {
  for (const c of ref.assignment) {
    const pairs = munkres(c.cost as number[][]);
    assert.equal(pairs.length, Math.min(c.cost.length, c.cost[0].length));
    const total = pairs.reduce((s, [i, j]) => s + c.cost[i][j], 0);
    assert.ok(Math.abs(total - c.optimum) < 1e-9, `${total} vs ${c.optimum}`);
  }
});

test('aggregate: micro and macro field F1, per-field scores, exact match, invalid_json_rate; topline field_f1_micro', () => {
  const gt = { a: 'x', b: 'y' };
  const rows = [grade('{"a": "x", "b": "y"}', gt), grade('{"a": "x", "b": "z"}', gt), grade('oops', gt)];
  const agg = json.aggregate(rows);
  assert.equal(agg.topline, 'field_f1_micro');
  assert.equal(agg.n, 3);
  // a: TP 2, FN 1; b: TP 1, FP 1, FN 2. Micro: TP 3, FP 1, FN 3 → 6/10.
  assert.equal(agg.metrics.field_f1_micro, 0.6);
  assert.equal(agg.metrics.field_precision_micro, 3 / 4);
  assert.equal(agg.metrics.field_recall_micro, 3 / 6);
  assert.deepEqual(agg.fields?.a, { tp: 2, fp: 0, fn: 1, precision: 1, recall: 2 / 3, f1: 4 / 5 });
  assert.equal(agg.metrics.field_f1_macro, (4 / 5 + 2 / 5) / 2);
  assert.equal(agg.metrics.exact_match, 1 / 3);
  assert.equal(agg.metrics.invalid_json_rate, 1 / 3);
  assert.equal(agg.metrics.doc_f1_mean, (1 + 0.5 + 0) / 3);
  assert.equal(agg.metrics.key_jaccard, (1 + 1 + 0) / 3);
});

test('json_repair: the repaired value equals Python json_repair v0.52.3 on LLM-style outputs', () => {
  assert.ok(ref.json_repair.length >= 25);
  for (const c of ref.json_repair) {
    assert.deepEqual(repairJson(c.input), c.ok ? c.value : '', JSON.stringify(c.input));
  }
});

test('jsondiff: compact diff counts, ground-truth fields and similarity equal jsondiff 2.2.1 + the cookbook', () => {
  assert.ok(ref.jsondiff.length >= 20);
  for (const c of ref.jsondiff) {
    const d = jsondiff(c.pred, c.gt);
    const what = `${JSON.stringify(c.pred)} → ${JSON.stringify(c.gt)}`;
    assert.equal(pyTruthy(d), c.truthy, what);
    if (c.differences !== null) assert.equal(countDifferences(d), c.differences, what);
    assert.equal(countTotalFields(c.gt), c.total_fields, what);
    assert.ok(Math.abs(jsonSimilarity(c.pred, c.gt) - c.similarity) < 1e-15, what);
  }
});

test("cookbook score: the llama-cookbook JSONGrader's row scores and aggregate, errors where it raises", () => {
  assert.ok(ref.cookbook_rows.length >= 25);
  const scores: number[] = [];
  const rows: RowGrade[] = [];
  for (const r of ref.cookbook_rows) {
    const what = JSON.stringify(r.raw_response.slice(0, 80));
    const c = cookbookScore(r.expected_output, r.raw_response);
    assert.equal(c.score, r.score, what);
    assert.equal(Boolean(c.raised), r.raises !== null, what);
    if (r.raises === null) {
      assert.equal(c.nb_different_fields, r.nb_different_fields, what);
      assert.equal(c.total_fields, r.total_fields, what);
    } else assert.match(c.error ?? '', new RegExp(`^${r.raises}`), what);
    scores.push(c.score);
    // The grader never throws for these answers, even where the original would have aborted the cell.
    const row = json.gradeRow({ prediction: r.raw_response, reference: r.expected_output });
    assert.equal(row.details.cookbook_score, r.score, what);
    rows.push(row);
  }
  const agg = json.aggregate(rows);
  assert.ok(Math.abs(agg.metrics.cookbook_accuracy - ref.cookbook_aggregate.accuracy) < 1e-12);
  assert.ok(Math.abs(agg.metrics.cookbook_error_rate - ref.cookbook_aggregate.error_rate) < 1e-12);
  assert.equal(
    json.gradeRow({ prediction: '{}', reference: { a: 1, b: 'x', c: null, l: [1, 2] } }).details
      .cookbook_score,
    0.4,
  );
  const off = createGrader('json', { cookbook: false });
  assert.equal(
    off.aggregate([off.gradeRow({ prediction: '{}', reference: {} })]).metrics.cookbook_accuracy,
    undefined,
  );
});

test('no answer crashes a grader: odd and hostile predictions score in [0, 1]', () => {
  const odd = [
    '',
    '```json',
    '```json\n```',
    '{{{{',
    '}}}]]]',
    '['.repeat(20000),
    `${'['.repeat(5000)}${']'.repeat(5000)}`,
    '{"a": "\\ud800"}',
    '\u0000\u0001 {"a": 1} \uFFFF',
    '# only a comment',
    '/* unclosed comment {"a": 1}',
    '"a string"',
    'null',
    'NaN',
    '{"a": 1e999}',
    '{"__proto__": {"x": 1}, "a": 1}',
  ];
  // A string reference is JSON text ('"x"' is the string x); the last one has an own "__proto__" key.
  const references: unknown[] = [
    { a: 1 },
    [1, 2],
    '"x"',
    { l: [{ k: 1 }, { k: 2 }] },
    JSON.parse('{"__proto__": 1}'),
  ];
  for (const prediction of odd) {
    for (const reference of references) {
      const r = json.gradeRow({ prediction, reference });
      assert.ok(r.score >= 0 && r.score <= 1, `${JSON.stringify(prediction.slice(0, 30))}: ${r.score}`);
      const c = r.details.cookbook_score as number;
      assert.ok(c === -1 || (c >= 0 && c <= 1));
    }
  }
  for (const name of [
    'exact_match',
    'contains',
    'regex',
    'token_f1',
    'anls',
    'vqa_score',
    'relaxed_accuracy',
    'line_accuracy',
    'numeric',
  ]) {
    const g = createGrader(name);
    for (const prediction of odd) {
      const score = g.gradeRow({ prediction, reference: name === 'numeric' ? 1 : 'x' }).score;
      assert.ok(score >= 0 && score <= 1, `${name} on ${JSON.stringify(prediction.slice(0, 30))}`);
    }
  }
});

test('JSON nested deeper than the limit is invalid in an answer and an error in a reference', () => {
  const deep = `${'['.repeat(300)}${']'.repeat(300)}`;
  assert.equal(grade(deep, [1]).details.status, 'invalid_json');
  assert.match(String(grade(deep, [1]).details.json_error), /nested deeper than 256 levels/);
  assert.throws(() => grade('[]', deep), /reference: nested deeper than 256 levels/);
  assert.equal(grade(`${'['.repeat(200)}${']'.repeat(200)}`, [1]).details.status, 'ok');
});
