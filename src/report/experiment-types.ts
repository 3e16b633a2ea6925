/**
 * The experiment folder's own records as docs/experiment-layout.md defines them: run records
 * (`runs/<id>/run.json`, schema transferlab-run/1) and the study summary (`summary.json`, transferlab-summary/1).
 * The report and the dashboard read these; the experiment runner writes them.
 */

export const RUN_SCHEMA = 'transferlab-run/1';
export const SUMMARY_SCHEMA = 'transferlab-summary/1';

export const RUN_STAGES = [
  'data',
  'tokenizer',
  'pretrain',
  'finetune',
  'eval',
  'features',
  'metrics',
  'geometry',
  'summary',
] as const;
export type RunStage = (typeof RUN_STAGES)[number];

export const RUN_STATES = ['pending', 'running', 'done', 'failed'] as const;
export type RunState = (typeof RUN_STATES)[number];

export type ParamValue = string | number | boolean | null;

export interface RunRecord {
  schema: typeof RUN_SCHEMA;
  /** Content address (16 hex digits). */
  id: string;
  stage: RunStage;
  /** Human-readable name, unique in the plan; also its output folder name. */
  name: string;
  /** The hyper-parameters that define the run (flat). */
  params: Record<string, ParamValue>;
  config: Record<string, unknown>;
  deps: string[];
  /** Paths relative to the experiment folder that the run owns. */
  outputs: string[];
  state: RunState;
  attempts: number;
  pid?: number;
  host?: string;
  heartbeat_at?: string;
  executor: { kind: 'inline' | 'workers' | 'slurm' | 'external'; job_id?: string; array_index?: number };
  started_at?: string;
  finished_at?: string;
  seconds?: number;
  /** Headline numbers, e.g. {train_loss, eval_loss, eval_accuracy}. */
  result?: Record<string, ParamValue>;
  error?: string;
  log_tail?: string[];
}

/** A statistic with its interval (null where there is none). */
export interface IntervalValue {
  value: number | null;
  low: number | null;
  high: number | null;
}

export interface EstimatorSummary {
  kendall_tau: IntervalValue;
  weighted_tau?: IntervalValue;
  spearman?: IntervalValue;
  pearson?: IntervalValue;
  n_models: number;
  /** The sample size the correlation was measured at, when the runner says. */
  n_samples?: number;
  /** 'informative', or why not (too few models, ties, CI wider than 1). */
  reliability: string;
  top1_relative_accuracy?: number | null;
  predicted_best?: string | null;
  actual_best?: string | null;
}

/** One correlation of summary.json's `estimators` list, as `tlab run` writes it (a `tlab metrics sweep` correlation). */
export interface SummaryCorrelation {
  task: string;
  metric: string;
  n_samples: number;
  models: number;
  /** null when undefined (e.g. tied scores; JSON has no NaN). */
  kendall: number | null;
  kendall_ci95: [number | null, number | null];
  weighted_kendall?: number;
  spearman?: number;
  pearson?: number;
  relative_top1?: number;
  reliability?: string;
}

/** The best estimator of a target task, as `tlab run` lists them. */
export interface SummaryBest {
  task: string;
  n_samples?: number;
  estimator: string;
  kendall_tau: number | null;
  kendall_ci95?: [number, number];
  reliability?: string;
  informative?: boolean;
  actual_best?: string | null;
}

export interface ExperimentSummary {
  schema: typeof SUMMARY_SCHEMA;
  experiment: {
    name: string;
    created_at?: string;
    updated_at?: string;
    /** Counts of runs by stage, then state. */
    runs?: Record<string, Record<string, number>>;
  };
  /** The transfer matrix as in transfer.json's `matrix` (null before there is a grid). */
  transfer?: {
    models: string[];
    tasks: string[];
    score: (number | null)[][];
    delta_vs_base?: (number | null)[][];
    relative_gain?: (number | null)[][];
    transfer_index?: (number | null)[][];
  } | null;
  /**
   * Per target task and estimator (docs/experiment-layout.md's form), or the list of correlations `tlab run`
   * writes; read both through summaryEstimators().
   */
  estimators?: Record<string, Record<string, EstimatorSummary>> | SummaryCorrelation[];
  best_estimator?:
    | Record<string, { estimator: string; kendall_tau: number | null; informative: boolean }>
    | SummaryBest[];
  /** The accuracies the estimators were correlated with (zoo model fine-tuned on the task, scored on it). */
  actual_scores?: { model: string; task: string; accuracy: number }[];
  plots?: string[];
  notes?: string[];
}

/** A correlation of an estimator with actual accuracy, whichever form summary.json has. */
export interface EstimatorCorrelation {
  task: string;
  metric: string;
  n_samples?: number;
  n_models: number;
  kendall_tau: IntervalValue;
  reliability: string;
}

export function summaryEstimators(summary: ExperimentSummary | null): EstimatorCorrelation[] {
  const e = summary?.estimators;
  if (!e) return [];
  if (Array.isArray(e))
    return e.map((c) => ({
      task: c.task,
      metric: c.metric,
      n_samples: c.n_samples,
      n_models: c.models,
      kendall_tau: { value: c.kendall, low: c.kendall_ci95?.[0] ?? null, high: c.kendall_ci95?.[1] ?? null },
      reliability: c.reliability ?? '',
    }));
  return Object.entries(e).flatMap(([task, byMetric]) =>
    Object.entries(byMetric).map(([metric, s]) => ({
      task,
      metric,
      n_samples: s.n_samples,
      n_models: s.n_models,
      kendall_tau: s.kendall_tau,
      reliability: s.reliability,
    })),
  );
}

export interface BestEstimator {
  task: string;
  estimator: string;
  kendall_tau: number | null;
  informative: boolean;
  reliability: string;
  /** The model that really did best on the task, where the summary says. */
  actual_best: string | null;
}

export function summaryBest(summary: ExperimentSummary | null): BestEstimator[] {
  const b = summary?.best_estimator;
  if (!b) return [];
  if (Array.isArray(b))
    return b.map((x) => ({
      task: x.task,
      estimator: x.estimator,
      kendall_tau: x.kendall_tau,
      informative: x.informative ?? x.reliability === 'informative',
      reliability: x.reliability ?? (x.informative ? 'informative' : ''),
      actual_best: x.actual_best ?? null,
    }));
  return Object.entries(b).map(([task, x]) => ({
    task,
    estimator: x.estimator,
    kendall_tau: x.kendall_tau,
    informative: x.informative,
    reliability: x.informative ? 'informative' : 'not informative',
    actual_best: null,
  }));
}
