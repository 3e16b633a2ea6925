/**
 * exact_match, contains, regex, numeric and line_accuracy, and the registry's name and option checks. The
 * exact_match and regex tables come from lm-evaluation-harness's own exact_match_hf_evaluate and RegexFilter,
 * run by test/fixtures/eval/graders/make_fixtures.py; the other expectations are stated in each case.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createGrader, graderName, listGraders } from '../../src/eval/graders/index.ts';
import { pyRound } from '../../src/eval/graders/python-compat.ts';
import { TlabError } from '../../src/util/errors.ts';

const ref = JSON.parse(
  readFileSync(new URL('../fixtures/eval/graders/reference.json', import.meta.url), 'utf8'),
);

test('exact_match with whitespace and NFKC off is lm-eval-harness exact_match, case for case', () => {
  assert.ok(ref.exact_match.length >= 10);
  for (const c of ref.exact_match) {
    const g = createGrader('exact_match', { ...c.options, whitespace: false, unicode_nfkc: false });
    const got = g.gradeRow({ prediction: c.prediction, reference: c.reference }).score;
    assert.equal(
      got,
      c.score,
      `${JSON.stringify(c.prediction)} vs ${JSON.stringify(c.reference)} ${JSON.stringify(c.options)}`,
    );
  }
});

test('exact_match extras: whitespace and NFKC by default, articles on request, any of several references', () => {
  const em = createGrader('ExactMatchGrader');
  const score = (prediction: string, reference: unknown, g = em) =>
    g.gradeRow({ prediction, reference }).score;
  assert.equal(score('  Paris \n', 'Paris'), 1);
  assert.equal(score('ＰＡＲＩＳ', 'PARIS'), 1); // full-width letters fold under NFKC
  assert.equal(score('ﬁne', 'fine'), 1); // the ligature too
  assert.equal(score('Paris', 'paris'), 0);
  assert.equal(score('London', ['Paris', 'London']), 1);
  const squadLike = createGrader('exact_match', {
    ignore_case: true,
    ignore_punctuation: true,
    ignore_articles: true,
  });
  assert.equal(score('The Eiffel Tower.', 'eiffel tower', squadLike), 1);
  assert.equal(score('Theatre', 'atre', squadLike), 0); // only whole words are articles
  const agg = em.aggregate([
    { score: 1, details: {} },
    { score: 0, details: {} },
    { score: 1, details: {} },
  ]);
  assert.deepEqual(agg, { metrics: { exact_match: 2 / 3 }, topline: 'exact_match', n: 3 });
});

test('regex extracts as lm-eval-harness RegexFilter does (findall, group_select, first non-empty group, fallback)', () => {
  assert.ok(ref.regex.length >= 10);
  for (const c of ref.regex) {
    const g = createGrader('regex', {
      regex_pattern: c.regex_pattern,
      group_select: c.group_select,
      fallback: c.fallback,
      whitespace: false,
      unicode_nfkc: false,
    });
    // Graded against the reference's extraction, so the score is 1 exactly when the extraction agrees.
    const row = g.gradeRow({ prediction: c.response, reference: c.extracted });
    assert.equal(row.details.extracted, c.extracted, `${c.regex_pattern} on ${JSON.stringify(c.response)}`);
    assert.equal(row.score, 1);
  }
  const gsm = createGrader('RegexGrader');
  const rows = [
    gsm.gradeRow({ prediction: 'so\n#### 72', reference: '72' }),
    gsm.gradeRow({ prediction: 'I think 72', reference: '72' }),
  ];
  assert.deepEqual(
    rows.map((r) => r.score),
    [1, 0],
  );
  assert.deepEqual(gsm.aggregate(rows).metrics, { exact_match: 0.5, extracted_rate: 0.5 });
});

test('contains: normalised substring, optionally whole words only; an empty reference never matches', () => {
  const c = createGrader('contains', { ignore_case: true });
  assert.equal(c.gradeRow({ prediction: 'I believe the answer is Paris.', reference: 'paris' }).score, 1);
  assert.equal(c.gradeRow({ prediction: 'nothing here', reference: 'paris' }).score, 0);
  assert.equal(c.gradeRow({ prediction: 'anything', reference: '' }).score, 0);
  const word = createGrader('contains', { whole_word: true });
  assert.equal(word.gradeRow({ prediction: 'there are 10 cats', reference: '1' }).score, 0);
  assert.equal(word.gradeRow({ prediction: 'there is 1 cat, not 10', reference: '1' }).score, 1);
  assert.equal(word.gradeRow({ prediction: 'cat-like', reference: 'cat' }).score, 1);
});

test('numeric: currency, commas and % stripped; the last number of free text; tolerances', () => {
  const n = createGrader('numeric');
  const s = (prediction: string, reference: unknown, g = n) => g.gradeRow({ prediction, reference }).score;
  assert.equal(s('$1,234.50', 1234.5), 1);
  assert.equal(s('€ 1,234.5', '1234.50'), 1);
  assert.equal(s('50%', 50), 1);
  assert.equal(s('−7', -7), 1); // U+2212 minus sign
  assert.equal(s('First 3, then 4, so the answer is 12.', 12), 1);
  assert.equal(s('0.30000000000000004', 0.3), 1); // within the default rel_tol 1e-9
  assert.equal(s('0.31', 0.3), 0);
  assert.equal(s('no digits', 3), 0);
  assert.equal(s('12', [11, 12]), 1);
  const tol = createGrader('numeric', { abs_tol: 0.05 });
  assert.equal(s('3.04', 3, tol), 1);
  assert.equal(s('3.06', 3, tol), 0);
  const rel = createGrader('numeric', { rel_tol: 0.01 });
  assert.equal(s('1009', 1000, rel), 1); // |9| ≤ 0.01·1000
  assert.equal(s('1011', 1000, rel), 0);
  const frac = createGrader('numeric', { percent: 'fraction' });
  assert.equal(s('50%', 0.5, frac), 1);
  const first = createGrader('numeric', { extract: 'first' });
  assert.equal(s('3 apples and 4 pears', 3, first), 1);
  const only = createGrader('numeric', { extract: 'only' });
  assert.equal(s('3 apples and 4 pears', 4, only), 0);
  const row = n.gradeRow({ prediction: 'about 7', reference: 7.5 });
  assert.equal(row.details.abs_error, 0.5);
  assert.throws(() => n.gradeRow({ prediction: '1', reference: 'many' }), /reference: expected a number/);
  assert.deepEqual(n.aggregate([row, n.gradeRow({ prediction: 'x', reference: 1 })]).metrics, {
    accuracy: 0,
    parsed_rate: 0.5,
  });
});

test('line_accuracy: reference lines matched at the same position (the grid world multi-question rows)', () => {
  const g = createGrader('LineAccuracyGrader');
  const reference = 'Q1 A: bird\nQ2 A: frog\nQ3 A: cat';
  const row = g.gradeRow({ prediction: 'Q1 A: bird\n\nQ2 A: dog\nQ3 A: cat\n', reference });
  assert.equal(row.score, 2 / 3);
  assert.equal(g.gradeRow({ prediction: reference, reference }).details.all_correct, true);
  assert.deepEqual(g.aggregate([row, g.gradeRow({ prediction: reference, reference })]).metrics, {
    line_accuracy: (2 / 3 + 1) / 2,
    all_lines_correct: 0.5,
  });
});

test('registry: names match loosely, aliases resolve, unknown names and options say what is valid', () => {
  assert.equal(graderName('JSONGrader'), 'json');
  assert.equal(graderName('exact-match'), 'exact_match');
  assert.equal(graderName('TokenF1Grader'), 'token_f1');
  assert.throws(
    () => createGrader('exact_mach', {}, 'task.yaml: grader'),
    (e: unknown) =>
      e instanceof TlabError &&
      e.message === "task.yaml: grader: unknown grader 'exact_mach' (did you mean 'exact_match'?)" &&
      (e.details ?? '').includes('json'),
  );
  assert.throws(
    () => createGrader('exact_match', { ignore_cas: true }, 'task.yaml'),
    (e: unknown) =>
      e instanceof TlabError &&
      e.message.startsWith(
        "task.yaml: grader 'exact_match': unknown option 'ignore_cas' (did you mean 'ignore_case'?)",
      ) &&
      (e.details ?? '').includes('regexes_to_ignore'),
  );
  assert.throws(() => createGrader('numeric', { abs_tol: -1 }), /option 'abs_tol': expected a number >= 0/);
  assert.throws(
    () => createGrader('numeric', { extract: 'middle' }),
    /'middle' is not one of 'last', 'first', 'only'/,
  );
  assert.throws(
    () => createGrader('regex', { regex_pattern: '(' }),
    /option 'regex_pattern': not a valid regular expression/,
  );
  assert.throws(
    () => createGrader('token_f1', { x: 1 }),
    (e: unknown) => e instanceof TlabError && e.details === 'this grader takes no options',
  );
  // Text from --option k=v converts to the declared type.
  assert.equal(
    createGrader('exact_match', { ignore_case: 'true' }).gradeRow({ prediction: 'A', reference: 'a' }).score,
    1,
  );
  const names = listGraders().map((g) => g.name);
  for (const n of [
    'exact_match',
    'contains',
    'regex',
    'numeric',
    'multiple_choice',
    'multiple_choice_letter',
    'token_f1',
    'anls',
    'vqa_score',
    'relaxed_accuracy',
    'json',
  ])
    assert.ok(names.includes(n), n);
  assert.equal(listGraders().find((g) => g.name === 'multiple_choice')?.needs, 'choice-loglik');
});

test('pyRound rounds half to even on exact ties, like Python round()', () => {
  assert.equal(pyRound(1 / 32, 4), 0.0312); // 0.03125 is exact in binary
  assert.equal(pyRound(31 / 32, 4), 0.9688);
  assert.equal(pyRound(2 / 3, 4), 0.6667);
  assert.equal(pyRound(11 / 12, 4), 0.9167);
  assert.equal(pyRound(0.00005, 4), 0.0001); // not an exact tie: 0.00005 is slightly above in binary
  // Every k/n for n ≤ 64 (the cookbook's score ratios) and random values, against Python's round(x, 4).
  assert.ok(ref.round4.length > 1000);
  for (const [x, want] of ref.round4) assert.equal(pyRound(x, 4), want, String(x));
});
