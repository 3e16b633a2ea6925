/**
 * The grader registry: a task's `grader` name (snake_case, or an alias such as the llama-cookbook's
 * `JSONGrader`) and its options → a Grader. Names match loosely (case, '-', '_' and a trailing "Grader" are
 * ignored), so `ExactMatchGrader`, `exact-match` and `exact_match` are one grader.
 */
import { didYouMean } from '../../util/did-you-mean.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { multipleChoiceGrader, multipleChoiceLetterGrader } from './choice.ts';
import { jsonGrader } from './json.ts';
import { TEXT_NORMALIZATION_OPTIONS } from './normalize.ts';
import { numericGrader } from './numeric.ts';
import { type GraderOptions, validateOptions } from './options.ts';
import { tokenF1Grader } from './squad.ts';
import { containsGrader, exactMatchGrader, lineAccuracyGrader, regexGrader } from './text.ts';
import type { Grader, GraderInfo, GraderNeeds, OptionSpec } from './types.ts';
import { anlsGrader, relaxedAccuracyGrader, vqaScoreGrader } from './vqa.ts';

interface GraderDefinition {
  name: string;
  aliases: string[];
  description: string;
  needs: GraderNeeds;
  options: readonly OptionSpec[];
  create(options: GraderOptions, context: string): Grader;
}

const DEFINITIONS: readonly GraderDefinition[] = [
  {
    name: 'exact_match',
    aliases: ['ExactMatchGrader'],
    description: "normalised prediction equals a reference (lm-eval-harness's exact_match options)",
    needs: 'generation',
    options: TEXT_NORMALIZATION_OPTIONS,
    create: exactMatchGrader,
  },
  {
    name: 'contains',
    aliases: ['ContainsGrader'],
    description: 'a normalised reference occurs in the normalised prediction',
    needs: 'generation',
    options: [
      ...TEXT_NORMALIZATION_OPTIONS,
      {
        name: 'whole_word',
        type: 'boolean',
        default: false,
        description: 'the reference must not be part of a longer word or number',
      },
    ],
    create: containsGrader,
  },
  {
    name: 'regex',
    aliases: ['RegexGrader'],
    description: "extract with a regular expression (lm-eval-harness's regex filter), then exact match",
    needs: 'generation',
    options: [
      {
        name: 'regex_pattern',
        type: 'string',
        default: String.raw`#### (\-?[0-9\.\,]+)`,
        description: 'Python-style pattern; with groups, the first non-empty group is taken',
      },
      {
        name: 'group_select',
        type: 'integer',
        default: 0,
        description: 'which match to keep (re.findall index; -1 = the last)',
      },
      {
        name: 'fallback',
        type: 'string',
        default: '[invalid]',
        description: 'the extracted value when nothing matches',
      },
      ...TEXT_NORMALIZATION_OPTIONS,
    ],
    create: regexGrader,
  },
  {
    name: 'numeric',
    aliases: ['NumericGrader'],
    description: 'a number read from the prediction equals the reference within a tolerance',
    needs: 'generation',
    options: [
      { name: 'abs_tol', type: 'number', default: 0, min: 0, description: 'absolute tolerance' },
      {
        name: 'rel_tol',
        type: 'number',
        default: 1e-9,
        min: 0,
        description: 'relative tolerance (of the reference): |p − t| ≤ max(abs_tol, rel_tol·|t|)',
      },
      {
        name: 'extract',
        type: 'enum',
        choices: ['last', 'first', 'only'],
        default: 'last',
        description: 'which number of free text to take (when the whole prediction is not one number)',
      },
      {
        name: 'percent',
        type: 'enum',
        choices: ['strip', 'fraction'],
        default: 'strip',
        description: "'strip': 50% is 50; 'fraction': 50% is 0.5",
      },
    ],
    create: numericGrader,
  },
  {
    name: 'multiple_choice',
    aliases: ['MultipleChoiceGrader', 'loglik_choice'],
    description:
      'the option with the highest log-likelihood: acc, and acc_norm per character (lm-eval-harness)',
    needs: 'choice-loglik',
    options: [
      {
        name: 'topline',
        type: 'enum',
        choices: ['acc', 'acc_norm'],
        default: 'acc',
        description: 'the metric that is the row score and the topline',
      },
    ],
    create: multipleChoiceGrader,
  },
  {
    name: 'multiple_choice_letter',
    aliases: ['MultipleChoiceLetterGrader', 'mcq'],
    description: "an option letter or a unique option text parsed from the answer (VLMEvalKit's can_infer)",
    needs: 'generation',
    options: [],
    create: multipleChoiceLetterGrader,
  },
  {
    name: 'token_f1',
    aliases: ['TokenF1Grader', 'squad'],
    description: 'SQuAD token F1 (and exact match) against the best reference',
    needs: 'generation',
    options: [],
    create: tokenF1Grader,
  },
  {
    name: 'anls',
    aliases: ['AnlsGrader'],
    description: 'average normalised Levenshtein similarity (DocVQA), as VLMEvalKit computes it',
    needs: 'generation',
    options: [
      {
        name: 'threshold',
        type: 'number',
        default: 0.5,
        min: 0,
        description: 'similarities below it score 0',
      },
    ],
    create: anlsGrader,
  },
  {
    name: 'vqa_score',
    aliases: ['VqaScoreGrader', 'VQAScoreGrader'],
    description: 'the VQAv2 score over several annotator answers, as VLMEvalKit computes it',
    needs: 'generation',
    options: [
      {
        name: 'single_reference',
        type: 'enum',
        choices: ['exact', 'leave_one_out'],
        default: 'exact',
        description:
          "with one reference: 'exact' = normalised equality; 'leave_one_out' = VLMEvalKit's formula (always 0)",
      },
    ],
    create: vqaScoreGrader,
  },
  {
    name: 'relaxed_accuracy',
    aliases: ['RelaxedAccuracyGrader'],
    description: 'numbers within 5% relative error, else case-insensitive equality (ChartQA)',
    needs: 'generation',
    options: [
      {
        name: 'max_relative_change',
        type: 'number',
        default: 0.05,
        min: 0,
        description: 'largest accepted |p − t| / |t|',
      },
    ],
    create: relaxedAccuracyGrader,
  },
  {
    name: 'line_accuracy',
    aliases: ['LineAccuracyGrader'],
    description: 'answers one per line: the fraction of reference lines matched at the same position',
    needs: 'generation',
    options: TEXT_NORMALIZATION_OPTIONS,
    create: lineAccuracyGrader,
  },
  {
    name: 'json',
    aliases: ['JSONGrader', 'JsonGrader'],
    description:
      'field-level P/R/F1 of extracted JSON (topline field_f1_micro), plus the llama-cookbook score',
    needs: 'generation',
    options: [
      { name: 'abs_tol', type: 'number', default: 0, min: 0, description: 'absolute tolerance for numbers' },
      {
        name: 'rel_tol',
        type: 'number',
        default: 1e-9,
        min: 0,
        description: 'relative tolerance for numbers',
      },
      {
        name: 'strip_punctuation',
        type: 'boolean',
        default: false,
        description: 'also remove ASCII punctuation when comparing strings',
      },
      {
        name: 'dates',
        type: 'boolean',
        default: true,
        description: 'unambiguous dates in different formats are equal (2024-03-05 = March 5, 2024)',
      },
      {
        name: 'null_strings',
        type: 'string[]',
        default: ['', 'N/A', 'null'],
        description: 'strings that mean "no value" (equal to null), compared casefolded',
      },
      {
        name: 'unwrap_gt_parse',
        type: 'boolean',
        default: true,
        description: "use the reference's gt_parse member when it has one (Donut-style datasets)",
      },
      {
        name: 'cookbook',
        type: 'boolean',
        default: true,
        description: 'also compute the llama-cookbook score (cookbook_accuracy, cookbook_error_rate)',
      },
    ],
    create: jsonGrader,
  },
];

const looseKey = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .replace(/grader$/, '');

const BY_KEY = new Map<string, GraderDefinition>();
for (const d of DEFINITIONS) for (const n of [d.name, ...d.aliases]) BY_KEY.set(looseKey(n), d);

function definition(name: string, where: string | undefined): GraderDefinition {
  const found = BY_KEY.get(looseKey(name));
  if (found) return found;
  const names = DEFINITIONS.map((d) => d.name);
  const all = DEFINITIONS.flatMap((d) => [d.name, ...d.aliases]);
  throw new TlabError(
    `${where ? `${where}: ` : ''}unknown grader '${name}'${didYouMean(name, all)}`,
    `graders: ${validChoices(names)} (run 'tlab eval graders' for their options)`,
  );
}

/** The canonical name of a grader name or alias (throws for an unknown one). */
export function graderName(name: string, where?: string): string {
  return definition(name, where).name;
}

/**
 * Creates the grader `name` with `options` checked; `where` (a file and field, e.g. "task.yaml: grader")
 * starts every error message.
 */
export function createGrader(name: string, options?: Record<string, unknown>, where?: string): Grader {
  const d = definition(name, where);
  const context = `${where ? `${where}: ` : ''}grader '${d.name}'`;
  const validated = validateOptions(d.options, options, context);
  return { ...d.create(validated, context), options: validated.toRecord() };
}

export function listGraders(): GraderInfo[] {
  return DEFINITIONS.map((d) => ({
    name: d.name,
    aliases: [...d.aliases],
    description: d.description,
    needs: d.needs,
    options: d.options.map((o) => ({
      name: o.name,
      type: o.type === 'enum' ? (o.choices ?? []).map((c) => `'${c}'`).join(' | ') : o.type,
      default: o.default,
      description: o.description,
    })),
  }));
}
