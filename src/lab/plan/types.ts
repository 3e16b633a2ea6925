/** The planned grid: content-addressed runs with their stage, parameters, full config, upstream runs and outputs. */

export const STAGES = [
  'data',
  'tokenizer',
  'pretrain',
  'finetune',
  'eval',
  'features',
  'metrics',
  'summary',
] as const;
export type Stage = (typeof STAGES)[number];

export type ParamValue = string | number | boolean | null;

export interface PlannedRun {
  /** SHA-256 (16 hex digits) of the stage, its normalised config and its inputs' fingerprints. */
  id: string;
  stage: Stage;
  /** Unique in the plan; also its output folder name. */
  name: string;
  /** The hyper-parameters that define it, flat (for tables and parallel coordinates). */
  params: Record<string, ParamValue>;
  /** What the stage executes (paths relative to the experiment folder). */
  config: Record<string, unknown>;
  deps: string[];
  /** Paths relative to the experiment folder the run writes. */
  outputs: string[];
}

export const PLAN_SCHEMA = 'transferlab-plan/1';

export interface Plan {
  schema: typeof PLAN_SCHEMA;
  experiment: string;
  /** The experiment folder (absolute). */
  out: string;
  /** The experiment file, and the folder its relative paths (local datasets, model folders) resolve against. */
  file: string;
  base_dir: string;
  created_at: string;
  runs: PlannedRun[];
  /** Things the user should know (ignored keys, runs left out and why). */
  notes: string[];
}
