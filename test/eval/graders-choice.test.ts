/**
 * Multiple choice by log-likelihood (acc/acc_norm: lm-eval-harness's formula argmax(ll) and argmax(ll / len),
 * evaluated with numpy in make_fixtures.py, since its process_results needs a whole Task) and by parsing the
 * answer (VLMEvalKit's can_infer, run as written by make_fixtures.py).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { canInfer } from '../../src/eval/graders/choice.ts';
import { createGrader } from '../../src/eval/graders/index.ts';

const ref = JSON.parse(
  readFileSync(new URL('../fixtures/eval/graders/reference.json', import.meta.url), 'utf8'),
);

test('multiple_choice: acc and acc_norm (per character) as lm-eval-harness computes them', () => {
  assert.ok(ref.multiple_choice.length >= 5);
  const acc = createGrader('multiple_choice');
  const norm = createGrader('MultipleChoiceGrader', { topline: 'acc_norm' });
  const rows = [];
  for (const c of ref.multiple_choice) {
    const input = {
      prediction: '',
      reference: null,
      choices: c.choices,
      gold: c.gold,
      choiceLoglik: c.logprobs.map((logprob: number, i: number) => ({
        logprob,
        chars: [...c.choices[i]].length,
        greedy: i === c.gold,
      })),
    };
    const row = acc.gradeRow(input);
    assert.equal(row.details.acc, c.acc, JSON.stringify(c));
    assert.equal(row.details.acc_norm, c.acc_norm, JSON.stringify(c));
    assert.equal(row.score, c.acc);
    assert.equal(norm.gradeRow(input).score, c.acc_norm);
    rows.push(row);
  }
  const agg = acc.aggregate(rows);
  const meanOf = (k: 'acc' | 'acc_norm') =>
    ref.multiple_choice.reduce((s: number, c: Record<string, number>) => s + c[k], 0) /
    ref.multiple_choice.length;
  assert.equal(agg.topline, 'acc');
  assert.equal(agg.metrics.acc, meanOf('acc'));
  assert.equal(agg.metrics.acc_norm, meanOf('acc_norm'));
  assert.equal(agg.metrics.greedy_match, 1);
  assert.equal(norm.aggregate(rows).topline, 'acc_norm');
});

test('multiple_choice: the gold option from a reference index, letter or text; bad input names the field', () => {
  const g = createGrader('multiple_choice');
  const lls = [
    { logprob: -3, chars: 3, greedy: false },
    { logprob: -1, chars: 2, greedy: true },
  ];
  const choices = ['yes', 'no'];
  assert.equal(g.gradeRow({ prediction: '', reference: 1, choiceLoglik: lls }).score, 1);
  assert.equal(g.gradeRow({ prediction: '', reference: 'no', choices, choiceLoglik: lls }).score, 1);
  assert.equal(g.gradeRow({ prediction: '', reference: 'A', choices, choiceLoglik: lls }).score, 0);
  assert.throws(() => g.gradeRow({ prediction: 'x', reference: 0 }), /choice_loglik: required/);
  assert.throws(
    () => g.gradeRow({ prediction: '', reference: 5, choiceLoglik: lls }),
    /gold: expected the right option's index in 0\.\.1/,
  );
  assert.throws(
    () => g.gradeRow({ prediction: '', reference: 0, choices: ['a'], choiceLoglik: lls }),
    /choice_loglik: 2 entries for 1 choices/,
  );
});

test("multiple_choice_letter: VLMEvalKit's can_infer, case for case", () => {
  assert.ok(ref.can_infer.length >= 15);
  for (const c of ref.can_infer)
    assert.equal(canInfer(c.answer, c.choices), c.inferred, JSON.stringify(c.answer));
});

test('multiple_choice_letter grades the inferred letter and counts unparsed and refused answers', () => {
  const g = createGrader('multiple_choice_letter');
  const choices = ['Paris', 'London', 'Berlin'];
  const rows = [
    g.gradeRow({ prediction: 'The answer is B.', reference: 'B', choices }),
    g.gradeRow({ prediction: 'Berlin', reference: 'London', choices }),
    g.gradeRow({ prediction: 'hmm', gold: 0, reference: null, choices }),
    g.gradeRow({ prediction: 'Cannot determine the answer', gold: 0, reference: null, choices }),
  ];
  assert.deepEqual(
    rows.map((r) => r.score),
    [1, 0, 0, 0],
  );
  assert.equal(rows[1].details.inferred, 'C');
  assert.equal(rows[2].details.inferred, null);
  assert.equal(rows[3].details.inferred, 'Z');
  assert.deepEqual(g.aggregate(rows).metrics, { accuracy: 0.25, unparsed_rate: 0.25, none_rate: 0.25 });
  assert.throws(
    () => g.gradeRow({ prediction: 'A', reference: 'A' }),
    /choices: the multiple_choice_letter grader needs/,
  );
});
