/**
 * Multiple choice, two ways. By log-likelihood (lm-eval-harness's `multiple_choice` output type): the option
 * with the highest log-probability (acc) or the highest log-probability per character (acc_norm). From
 * generated text (VLMEvalKit's rule-based can_infer, without its LLM judge): an option letter standing alone near
 * the end of the answer, else the one option whose text the answer contains.
 */
import { TlabError } from '../../util/errors.ts';
import { describeJson } from '../../util/json-file.ts';
import { mean, rateOf } from './normalize.ts';
import type { GraderOptions } from './options.ts';
import { pyLen, pySplit, pyStrip } from './python-compat.ts';
import { meanScore } from './text.ts';
import type { GradeInput, Grader, RowGrade } from './types.ts';

/** The gold option's index: `gold`, else a reference that is an index, an option letter or an option's text. */
function goldIndex(input: GradeInput, count: number): number {
  let gold = input.gold;
  const ref = input.reference;
  if (gold === undefined) {
    if (typeof ref === 'number') gold = ref;
    else if (typeof ref === 'string' && input.choices?.includes(ref)) gold = input.choices.indexOf(ref);
    else if (typeof ref === 'string' && /^[A-Z]$/.test(pyStrip(ref))) gold = pyStrip(ref).charCodeAt(0) - 65;
  }
  if (gold === undefined || !Number.isInteger(gold) || gold < 0 || gold >= count) {
    throw new TlabError(
      `gold: expected the right option's index in 0..${count - 1} (or a reference naming the option), found ${describeJson(gold ?? ref)}`,
    );
  }
  return gold;
}

/** numpy.argmax: the first maximum, and the first NaN if there is one (NaN propagates in numpy's max). */
export function npArgmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) return i;
    if (values[i] > values[best]) best = i;
  }
  return best;
}

export function multipleChoiceGrader(options: GraderOptions): Grader {
  const topline = options.str('topline') as 'acc' | 'acc_norm';
  return {
    name: 'multiple_choice',
    needs: 'choice-loglik',
    gradeRow(input) {
      const lls = input.choiceLoglik;
      if (!lls || lls.length === 0)
        throw new TlabError('choice_loglik: required by the multiple_choice grader (one entry per option)');
      if (input.choices && input.choices.length !== lls.length)
        throw new TlabError(`choice_loglik: ${lls.length} entries for ${input.choices.length} choices`);
      const gold = goldIndex(input, lls.length);
      const pred = npArgmax(lls.map((c) => c.logprob));
      const predNorm = npArgmax(lls.map((c) => c.logprob / c.chars));
      const acc = pred === gold ? 1 : 0;
      const accNorm = predNorm === gold ? 1 : 0;
      const greedy = lls[gold].greedy ? 1 : 0;
      return {
        score: topline === 'acc' ? acc : accNorm,
        details: { pred, pred_norm: predNorm, gold, acc, acc_norm: accNorm, greedy_match: greedy },
      };
    },
    aggregate(rows) {
      const of = (k: string) => mean(rows.map((r) => r.details[k] as number));
      return {
        metrics: { acc: of('acc'), acc_norm: of('acc_norm'), greedy_match: of('greedy_match') },
        topline,
        n: rows.length,
      };
    },
  };
}

const REFUSALS = [
  "Sorry, I can't help with images of people yet.",
  "I can't process this file.",
  "I'm sorry, but without the image provided",
  'Cannot determine the answer',
];
const VERBOSE_ANSWER = /(?:correct\s+)?answer\s+is\s+\**([ABCD])\**/i;

/** VLMEvalKit's can_infer_option: a letter, 'Z' (a refusal or a lone "Z"), or false. */
function inferOption(answer: string, letters: readonly string[]): string | false {
  if (answer.includes('Failed to obtain answer via API')) return false;
  if (REFUSALS.some((r) => answer.includes(r))) return 'Z';
  let mod = answer;
  for (const c of '.()[],:;!*#{}') mod = mod.split(c).join(' ');
  const splits = pySplit(mod).map(pyStrip);
  const count = letters.filter((c) => splits.includes(c)).length;
  if (count === 1) {
    for (const ch of letters) {
      if (splits.includes(ch) && splits.indexOf(ch) > splits.length - 5) return ch;
    }
  } else if (count === 0 && splits.includes('Z')) {
    return 'Z';
  }
  const m = VERBOSE_ANSWER.exec(answer);
  if (m && letters.includes(m[1].toUpperCase())) return m[1].toUpperCase();
  return false;
}

/** VLMEvalKit's can_infer_text: the one option whose text (lower-cased) the answer contains. */
function inferText(answer: string, letters: readonly string[], texts: readonly string[]): string | false {
  const lower = answer.toLowerCase();
  if (pyLen(lower) > 2 * texts.reduce((s, t) => s + pyLen(t), 0)) return false;
  const cands = letters.filter((_, i) => lower.includes(texts[i].toLowerCase()));
  return cands.length === 1 ? cands[0] : false;
}

/** VLMEvalKit's can_infer(answer, choices) with choices A, B, C, ... in order. */
export function canInfer(answer: string, choices: readonly string[]): string | false {
  const letters = choices.map((_, i) => String.fromCharCode(65 + i));
  return inferOption(answer, letters) || inferText(answer, letters, choices);
}

export function multipleChoiceLetterGrader(): Grader {
  return {
    name: 'multiple_choice_letter',
    needs: 'generation',
    gradeRow(input): RowGrade {
      const choices = input.choices;
      if (!choices || choices.length === 0 || choices.length > 26)
        throw new TlabError('choices: the multiple_choice_letter grader needs 1 to 26 options');
      const gold = goldIndex(input, choices.length);
      const inferred = canInfer(input.prediction, choices);
      const goldLetter = String.fromCharCode(65 + gold);
      return {
        score: inferred === goldLetter ? 1 : 0,
        details: {
          inferred: inferred === false ? null : inferred,
          gold: goldLetter,
          parsed: inferred !== false,
          none: inferred === 'Z',
        },
      };
    },
    aggregate(rows) {
      return {
        metrics: {
          accuracy: meanScore(rows),
          unparsed_rate: 1 - rateOf(rows, 'parsed'),
          none_rate: rateOf(rows, 'none'),
        },
        topline: 'accuracy',
        n: rows.length,
      };
    },
  };
}
