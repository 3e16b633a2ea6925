/**
 * token_f1: SQuAD's answer F1 and exact match, as the official SQuAD 2.0 evaluation script computes them
 * (normalise: lower-case, drop punctuation and articles, collapse whitespace; F1 over the multiset of tokens;
 * the best over the gold answers; an empty answer only matches an empty answer).
 */
import { mean, referenceStrings } from './normalize.ts';
import { collapseWhitespace, pySplit, removePunctuation, replaceArticles } from './python-compat.ts';
import type { Grader } from './types.ts';

export function squadNormalize(s: string): string {
  return collapseWhitespace(replaceArticles(removePunctuation(s.toLowerCase())));
}

function tokens(s: string): string[] {
  return s ? pySplit(squadNormalize(s)) : [];
}

export function squadF1(gold: string, pred: string): { f1: number; precision: number; recall: number } {
  const g = tokens(gold);
  const p = tokens(pred);
  if (g.length === 0 || p.length === 0) {
    const same = g.length === p.length ? 1 : 0;
    return { f1: same, precision: same, recall: same };
  }
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same += 1;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return { f1: 0, precision: 0, recall: 0 };
  const precision = same / p.length;
  const recall = same / g.length;
  return { f1: (2 * precision * recall) / (precision + recall), precision, recall };
}

export function tokenF1Grader(): Grader {
  return {
    name: 'token_f1',
    needs: 'generation',
    gradeRow(input) {
      const given = referenceStrings(input.reference).filter((t) => squadNormalize(t) !== '');
      const golds = given.length > 0 ? given : [''];
      const pred = input.prediction;
      const exact = Math.max(...golds.map((g) => (squadNormalize(g) === squadNormalize(pred) ? 1 : 0)));
      const scores = golds.map((g) => squadF1(g, pred));
      const best = scores.reduce((a, b) => (b.f1 > a.f1 ? b : a));
      return {
        score: best.f1,
        details: { f1: best.f1, precision: best.precision, recall: best.recall, exact_match: exact },
      };
    },
    aggregate(rows) {
      return {
        metrics: {
          f1: mean(rows.map((r) => r.score)),
          exact_match: mean(rows.map((r) => r.details.exact_match as number)),
        },
        topline: 'f1',
        n: rows.length,
      };
    },
  };
}
