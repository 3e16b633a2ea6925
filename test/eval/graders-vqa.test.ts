/**
 * token_f1 against the official SQuAD 2.0 evaluation script, and vqa_score, anls and relaxed_accuracy against
 * VLMEvalKit's vqa_eval.py (process_line + hit_calculate), all run by test/fixtures/eval/graders/make_fixtures.py.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createGrader } from '../../src/eval/graders/index.ts';
import { levenshtein, processAnswer } from '../../src/eval/graders/vqa.ts';

const ref = JSON.parse(
  readFileSync(new URL('../fixtures/eval/graders/reference.json', import.meta.url), 'utf8'),
);
const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12, `${what}: ${a} vs ${b}`);

test('token_f1: F1 and exact match of the SQuAD 2.0 script, best over references', () => {
  assert.ok(ref.token_f1.length >= 10);
  const g = createGrader('token_f1');
  const rows = ref.token_f1.map(
    (c: { prediction: string; references: string[]; f1: number; exact_match: number }) => {
      const row = g.gradeRow({ prediction: c.prediction, reference: c.references });
      close(row.score, c.f1, `f1 of ${JSON.stringify(c.prediction)}`);
      assert.equal(row.details.exact_match, c.exact_match, `em of ${JSON.stringify(c.prediction)}`);
      return row;
    },
  );
  const agg = g.aggregate(rows);
  const n = ref.token_f1.length;
  close(agg.metrics.f1, ref.token_f1.reduce((s: number, c: { f1: number }) => s + c.f1, 0) / n, 'mean f1');
  assert.equal(agg.topline, 'f1');
});

test("vqa_score: VLMEvalKit's VQAv2 score with annotator answers", () => {
  assert.ok(ref.vqa_score.length >= 6);
  const g = createGrader('vqa_score', { single_reference: 'leave_one_out' });
  for (const c of ref.vqa_score) {
    close(g.gradeRow({ prediction: c.prediction, reference: c.references }).score, c.score, c.prediction);
  }
  // One reference: VLMEvalKit's formula has no other annotator to agree with (0); the default is equality.
  const dflt = createGrader('VqaScoreGrader');
  assert.equal(g.gradeRow({ prediction: 'cat', reference: 'cat' }).score, 0);
  assert.equal(dflt.gradeRow({ prediction: 'The cat.', reference: 'cat' }).score, 1);
  assert.equal(dflt.gradeRow({ prediction: 'dog', reference: 'cat' }).score, 0);
});

test("vqa_score's answer normalisation matches VLMEvalKit's process_answer on its whole tables", () => {
  assert.ok(ref.process_answer.length > 100);
  for (const c of ref.process_answer)
    assert.equal(processAnswer(c.text), c.processed, JSON.stringify(c.text));
});

test("anls: VLMEvalKit's ANLS (raw lengths in the denominator, 0 below 0.5)", () => {
  assert.ok(ref.anls.length >= 8);
  const g = createGrader('anls');
  for (const c of ref.anls) {
    close(g.gradeRow({ prediction: c.prediction, reference: c.references }).score, c.score, c.prediction);
  }
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  assert.equal(levenshtein('👍a', 'a'), 1); // code points, not UTF-16 units
  const strict = createGrader('anls', { threshold: 0.95 });
  assert.equal(strict.gradeRow({ prediction: 'Acme Corporation', reference: 'Acme Corp' }).score, 0);
});

test("relaxed_accuracy: VLMEvalKit's relaxed correctness (5% for numbers, % as a fraction)", () => {
  assert.ok(ref.relaxed_accuracy.length >= 10);
  const g = createGrader('relaxed_accuracy');
  for (const c of ref.relaxed_accuracy) {
    assert.equal(
      g.gradeRow({ prediction: c.prediction, reference: c.references }).score,
      c.score,
      c.prediction,
    );
  }
  const loose = createGrader('relaxed_accuracy', { max_relative_change: 0.1 });
  assert.equal(loose.gradeRow({ prediction: '10.9', reference: '10' }).score, 1);
  assert.equal(g.gradeRow({ prediction: '10.9', reference: '10' }).score, 0);
});
