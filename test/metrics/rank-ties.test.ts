/**
 * Rank correlations that do not overstate: ties within a relative tolerance, τ-b and Spearman on the merged
 * scores, the exact permutation p-value (against scipy: test/fixtures/metrics/make_rank_ties.py), and the sweep
 * summary's verdict. The trap: LEEP scores equal to −ln 8 up to 3e-8 gave τ = 1 with a [1, 1] interval.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kendallTau, spearman } from '../../src/metrics/rank-correlation.ts';
import { correlationReliability, kendallPermutationPValue, mergeTies } from '../../src/metrics/rank-ties.ts';
import { type SweepResult, summarizeSweep } from '../../src/metrics/sweep.ts';

const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/metrics/rank_ties.json'), 'utf8'),
) as {
  rtol: number;
  cases: Record<
    string,
    {
      x: number[];
      y: number[];
      merged_x: number[];
      tied_groups_x: number[];
      raw_kendall: number;
      kendall: number;
      spearman: number;
      p_exact: number;
    }
  >;
};
const close = (a: number, b: number, what: string, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('merged ties, τ-b, Spearman and the exact permutation p-value match scipy', () => {
  for (const [name, c] of Object.entries(fixture.cases)) {
    const mx = mergeTies(c.x, fixture.rtol);
    const my = mergeTies(c.y, fixture.rtol).values;
    assert.deepEqual(mx.groups.sort(), [...c.tied_groups_x].sort(), `${name} groups`);
    mx.values.forEach((v, i) => {
      close(v, c.merged_x[i], `${name} merged[${i}]`, 1e-15);
    });
    close(kendallTau(c.x, c.y), c.raw_kendall, `${name} raw τ`);
    close(kendallTau(mx.values, my), c.kendall, `${name} τ-b`);
    close(spearman(mx.values, my), c.spearman, `${name} spearman`);
    close(kendallPermutationPValue(mx.values, my)!, c.p_exact, `${name} p`);
  }
});

test('the −ln 8 trap: τ = 1 from float noise becomes a τ-b with ties, and the tolerance is a setting', () => {
  const c = fixture.cases.leep_ties;
  assert.ok(c.raw_kendall > 1 - 1e-12, 'the raw scores are ordered by their noise');
  assert.ok(kendallTau(mergeTies(c.x).values, c.y) < 0.9);
  assert.deepEqual(mergeTies(c.x, 0).groups, [], 'tolerance 0: only exactly equal scores tie');
  assert.equal(kendallPermutationPValue([1, 1, 1], [1, 2, 3]), null, 'τ undefined: no p-value');
  assert.equal(
    kendallPermutationPValue(
      new Array(10).fill(0).map((_, i) => i),
      new Array(10).fill(0).map((_, i) => i),
    ),
    null,
  );
});

test('reliability: fewer than 8 models, or an interval wider than 1, is uninformative', () => {
  assert.match(correlationReliability(5, [0.8, 1]), /^uninformative: 5 models/);
  assert.match(correlationReliability(9, [-0.2, 0.9]), /wider than 1/);
  assert.equal(correlationReliability(9, [0.4, 0.9]), 'informative');
});

test('the sweep summary merges ties, gives p and flags five models as uninformative, with a warning', async () => {
  const c = fixture.cases.leep_ties;
  const models = c.x.map((_, i) => `m${i}`);
  const results = c.x.map(
    (score, i): SweepResult => ({
      key: `k${i}`,
      model: models[i],
      task: 't',
      metric: 'leep',
      metric_name: 'leep',
      options: {},
      n_samples: 100,
      seed: 0,
      score,
      n: 100,
      d: 4,
      c: 2,
      seconds: 0,
    }),
  );
  const accuracy = c.y.map((a, i) => ({ model: models[i], task: 't', accuracy: a }));
  const out = mkdtempSync(join(tmpdir(), 'tlab-ties-'));
  const s = await summarizeSweep(results, accuracy, out);
  const k = s.correlations[0];
  close(k.kendall, c.kendall, 'τ-b');
  close(k.spearman, c.spearman, 'spearman');
  close(k.kendall_p_exact!, c.p_exact, 'p');
  assert.equal(k.tied_models, 3);
  assert.match(k.reliability, /^uninformative: 5 models/);
  assert.equal(s.warnings.length, 1);
  assert.match(s.warnings[0], /t leep n=100: the rank correlation is uninformative/);
  const svg = readFileSync(join(out, 'plots', 't', 'leep_vs_accuracy.svg'), 'utf8');
  for (const m of ['m0', 'm1', 'm2']) assert.ok(svg.includes(`${m} (tied)`), `${m} is marked tied`);
  assert.ok(!svg.includes('m3 (tied)') && !svg.includes('m4 (tied)'));
});
