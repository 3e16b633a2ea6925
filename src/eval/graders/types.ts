/**
 * The grader interface: one row in (a prediction and its reference), a score in [0, 1] with details out; then an
 * aggregate over the rows with a named topline metric. The eval grid, `tlab eval grade` and the server's tests
 * all code against these names.
 */

/** One option's log-likelihood, as the multiple-choice grader needs it (lm-eval-harness's per-choice result). */
export interface ChoiceLoglik {
  /** Sum of the option's token log-probabilities given the prompt. */
  logprob: number;
  /** The option's length in characters, without the delimiter before it (acc_norm divides by it). */
  chars: number;
  /** Whether greedy decoding would have produced exactly this option. */
  greedy: boolean;
}

export interface GradeInput {
  /** Generated text ('' for log-likelihood graders). */
  prediction: string;
  /** A string, a list of acceptable strings, or JSON (a string or a value) for `json`. */
  reference: unknown;
  /** Multiple-choice options. */
  choices?: readonly string[];
  /** One per option, in the order of `choices`. */
  choiceLoglik?: readonly ChoiceLoglik[];
  /** Index of the right option. */
  gold?: number;
}

export interface RowGrade {
  /** In [0, 1]. */
  score: number;
  details: Record<string, unknown>;
}

/** Precision, recall and F1 of one field path (the JSON grader's per-field breakdown). */
export interface FieldScore {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface GradeAggregate {
  metrics: Record<string, number>;
  /** The key in `metrics` that summarises the grader. */
  topline: string;
  n: number;
  /** Per-field scores, for graders of structured output (field path → counts and P/R/F1). */
  fields?: Record<string, FieldScore>;
}

export type GraderNeeds = 'generation' | 'choice-loglik';

export interface Grader {
  readonly name: string;
  readonly needs: GraderNeeds;
  /** Every option's value, defaults included (set by createGrader; part of a grid cell's settings hash). */
  readonly options?: Record<string, unknown>;
  gradeRow(input: GradeInput): RowGrade;
  aggregate(rows: readonly RowGrade[]): GradeAggregate;
}

export type OptionType = 'boolean' | 'number' | 'integer' | 'string' | 'string[]' | 'enum';

export interface OptionSpec {
  name: string;
  type: OptionType;
  default: unknown;
  description: string;
  /** Valid values of an `enum` option. */
  choices?: readonly string[];
  /** Smallest valid value of a number option. */
  min?: number;
}

export interface GraderInfo {
  name: string;
  aliases: string[];
  description: string;
  needs: GraderNeeds;
  options: { name: string; type: string; default: unknown; description: string }[];
}
