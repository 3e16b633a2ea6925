/**
 * Visual-question-answering graders as VLMEvalKit's vqa_eval.py computes them: vqa_score (the VQAv2 protocol:
 * normalised answers, min(1, matches among the other annotators / 3), averaged), anls (DocVQA/InfoVQA:
 * 1 − normalised Levenshtein distance to the closest answer, 0 below a threshold) and relaxed_accuracy
 * (ChartQA: numbers within 5 % relative error, else case-insensitive equality; the best over answers).
 * Scores are fractions in [0, 1] (VLMEvalKit prints percentages).
 */

import { mean, referenceStrings } from './normalize.ts';
import type { GraderOptions } from './options.ts';
import { collapseWhitespace, pyFloat, pyLen, pySplit, pyStrip } from './python-compat.ts';
import type { Grader } from './types.ts';

const PUNCT = [
  ';',
  '/',
  '[',
  ']',
  '"',
  '{',
  '}',
  '(',
  ')',
  '=',
  '+',
  '\\',
  '_',
  '-',
  '>',
  '<',
  '@',
  '`',
  ',',
  '?',
  '!',
];
const COMMA_STRIP = /(\d)(,)(\d)/;
const PERIOD_STRIP = /(?<!\d)\.(?!\d)/g;

/** VLMEvalKit's process_punctuation, including its `periodStrip.sub('', s, re.UNICODE)`, which passes 32 as
 * the count, so at most 32 periods are removed. */
export function processPunctuation(inText: string): string {
  let out = inText;
  const commaInNumber = COMMA_STRIP.test(inText);
  for (const p of PUNCT) {
    if (inText.includes(`${p} `) || inText.includes(` ${p}`) || commaInNumber) out = out.split(p).join('');
    else out = out.split(p).join(' ');
  }
  let removed = 0;
  return out.replace(PERIOD_STRIP, (m) => (removed++ < 32 ? '' : m));
}

const NUMBER_WORDS: Record<string, string> = {
  none: '0',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
// The VQA evaluation's contraction table (missing apostrophes restored).
const CONTRACTIONS: Record<string, string> = Object.fromEntries(
  (
    "aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've " +
    "couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've " +
    "hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's " +
    "howd:how'd howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm Ive:I've isnt:isn't itd:it'd " +
    "itd've:it'd've it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't " +
    "mightnt've:mightn't've mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've " +
    "neednt:needn't notve:not've oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at " +
    "'ow'sat:'ow's'at shant:shan't shed've:she'd've she'dve:she'd've she's:she's shouldve:should've " +
    "shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've somebody'd:somebodyd " +
    "somebodyd've:somebody'd've somebody'dve:somebody'd've somebodyll:somebody'll somebodys:somebody's " +
    "someoned:someone'd someoned've:someone'd've someone'dve:someone'd've someonell:someone'll " +
    "someones:someone's somethingd:something'd somethingd've:something'd've something'dve:something'd've " +
    "somethingll:something'll thats:that's thered:there'd thered've:there'd've there'dve:there'd've " +
    "therere:there're theres:there's theyd:they'd theyd've:they'd've they'dve:they'd've theyll:they'll " +
    "theyre:they're theyve:they've twas:'twas wasnt:wasn't wed've:we'd've we'dve:we'd've weve:we've " +
    "werent:weren't whatll:what'll whatre:what're whats:what's whatve:what've whens:when's whered:where'd " +
    "wheres:where's whereve:where've whod:who'd whod've:who'd've who'dve:who'd've wholl:who'll whos:who's " +
    "whove:who've whyll:why'll whyre:why're whys:why's wont:won't wouldve:would've wouldnt:wouldn't " +
    "wouldnt've:wouldn't've wouldn'tve:wouldn't've yall:y'all yall'll:y'all'll y'allll:y'all'll " +
    "yall'd've:y'all'd've y'alld've:y'all'd've y'all'dve:y'all'd've youd:you'd youd've:you'd've " +
    "you'dve:you'd've youll:you'll youre:you're youve:you've"
  )
    .split(' ')
    .map((pair) => {
      const at = pair.indexOf(':');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
);

function processDigitArticle(text: string): string {
  const words = pySplit(text.toLowerCase())
    .map((w) => (Object.hasOwn(NUMBER_WORDS, w) ? NUMBER_WORDS[w] : w))
    .filter((w) => !ARTICLES.has(w));
  return words.map((w) => (Object.hasOwn(CONTRACTIONS, w) ? CONTRACTIONS[w] : w)).join(' ');
}

/** VLMEvalKit's process_answer (the VQA answer normalisation). */
export function processAnswer(answer: string): string {
  const a = pyStrip(answer.replace(/\n/g, ' ').replace(/\t/g, ' '));
  return processDigitArticle(processPunctuation(a));
}

export function vqaScoreGrader(options: GraderOptions): Grader {
  const single = options.str('single_reference');
  return {
    name: 'vqa_score',
    needs: 'generation',
    gradeRow(input) {
      const gts = referenceStrings(input.reference).map(processAnswer);
      const pred = processAnswer(input.prediction);
      let match: number[];
      if (gts.length === 1 && single === 'exact') match = [gts[0] === pred ? 1 : 0];
      else {
        match = gts.map((_, i) => {
          const others = gts.filter((g, j) => j !== i && g === pred).length;
          return Math.min(1, others / 3);
        });
      }
      return { score: mean(match), details: { normalized: pred, match } };
    },
    aggregate(rows) {
      return { metrics: { vqa_score: mean(rows.map((r) => r.score)) }, topline: 'vqa_score', n: rows.length };
    },
  };
}

/** Levenshtein distance over code points (Python strings), as VLMEvalKit's levenshtein_distance. */
export function levenshtein(a: string, b: string): number {
  let s1 = [...a];
  let s2 = [...b];
  if (s1.length > s2.length) [s1, s2] = [s2, s1];
  let prev = Array.from({ length: s1.length + 1 }, (_, i) => i);
  for (let i2 = 0; i2 < s2.length; i2++) {
    const next = [i2 + 1];
    for (let i1 = 0; i1 < s1.length; i1++) {
      next.push(s1[i1] === s2[i2] ? prev[i1] : 1 + Math.min(prev[i1], prev[i1 + 1], next[next.length - 1]));
    }
    prev = next;
  }
  return prev[prev.length - 1];
}

/**
 * VLMEvalKit's anls_compute: the distance is between the lower-cased, whitespace-collapsed strings, but the
 * length it divides by is that of the raw strings (upper-cased), as in that code.
 */
export function anlsDistance(groundtruth: string, prediction: string): number {
  const gt = collapseWhitespace(pyStrip(groundtruth).toLowerCase());
  const det = collapseWhitespace(pyStrip(prediction).toLowerCase());
  const dist = levenshtein(gt, det);
  const length = Math.max(pyLen(groundtruth.toUpperCase()), pyLen(prediction.toUpperCase()));
  return length === 0 ? 0 : dist / length;
}

export function anlsGrader(options: GraderOptions): Grader {
  const threshold = options.num('threshold');
  return {
    name: 'anls',
    needs: 'generation',
    gradeRow(input) {
      const distances = referenceStrings(input.reference).map((g) => anlsDistance(g, input.prediction));
      const best = 1 - Math.min(...distances);
      return { score: best < threshold ? 0 : best, details: { similarity: best, distances } };
    },
    aggregate(rows) {
      return { metrics: { anls: mean(rows.map((r) => r.score)) }, topline: 'anls', n: rows.length };
    },
  };
}

function toFloat(text: string): number | null {
  if (text.endsWith('%')) {
    const v = pyFloat(text.replace(/%+$/, ''));
    return v === null ? null : v / 100;
  }
  return pyFloat(text);
}

/** pix2struct's relaxed_correctness, as VLMEvalKit copies it. */
export function relaxedCorrectness(target: string, prediction: string, maxRelativeChange: number): boolean {
  const p = toFloat(prediction);
  const t = toFloat(target);
  // Python's `if prediction_float is not None and target_float:` (0 is falsy, NaN is truthy).
  if (p !== null && t !== null && t !== 0) return Math.abs(p - t) / Math.abs(t) <= maxRelativeChange;
  return prediction.toLowerCase() === target.toLowerCase();
}

export function relaxedAccuracyGrader(options: GraderOptions): Grader {
  const maxChange = options.num('max_relative_change');
  return {
    name: 'relaxed_accuracy',
    needs: 'generation',
    gradeRow(input) {
      const pred = pyStrip(input.prediction);
      const match = referenceStrings(input.reference).map((g) => relaxedCorrectness(g, pred, maxChange));
      return { score: match.some(Boolean) ? 1 : 0, details: { match } };
    },
    aggregate(rows) {
      return {
        metrics: { relaxed_accuracy: mean(rows.map((r) => r.score)) },
        topline: 'relaxed_accuracy',
        n: rows.length,
      };
    },
  };
}
