/**
 * The eval grid's result files (documented in docs/eval-grid.md):
 *   <out>/eval_grid.json                     EvalGrid: every model × task cell, versioned (`schema`)
 *   <out>/eval_grid_results.json             the llama-cookbook list form [{model, task, topline_metric, score, metrics}]
 *   <out>/grader_logs/<model>/<task>.jsonl   one GraderLogRow per evaluated sample
 *   <out>/cells/<model>/<task>.json          one finished cell (the grid file is rebuilt from these)
 */

export const EVAL_GRID_SCHEMA = 'transferlab-eval-grid/1';

export type ModelRole = 'base' | 'finetuned';

export interface GridModel {
  /** Unique name in the grid; the grader_logs folder name. */
  name: string;
  /** The model folder (in-process or served by `tlab serve`), or null for a server known only by URL. */
  path: string | null;
  role: ModelRole;
  /** For a fine-tuned model, the base model's name in this grid (null when the base is not evaluated). */
  base: string | null;
  /** The task a fine-tuned model was trained on (its row of the transfer matrix). */
  train_task: string | null;
  /** How it was fine-tuned: 'full', 'lora-r8', 'components:projector+decoder', ... (null for a base model). */
  strategy: string | null;
  /** 'local' (in-process) or 'openai' (an OpenAI-compatible server). */
  backend: 'local' | 'openai';
}

export interface GridTask {
  name: string;
  /** The task folder (formatted_datasets/<task>). */
  path: string;
  split: string;
  grader: string;
  grader_options: Record<string, unknown>;
  /** Samples evaluated (the same seeded subset for every model). */
  n: number;
  /** SHA-256 of the evaluated uids in order, so cells from different subsets are never compared. */
  uids_sha256: string;
}

export type CellStatus = 'done' | 'skipped' | 'error';

export interface GridCell {
  model: string;
  task: string;
  status: CellStatus;
  /** Name of the grader's headline metric; null unless done. */
  topline_metric: string | null;
  /** The topline metric's value; null unless done. */
  score: number | null;
  /** Every aggregate metric of the grader. */
  metrics: Record<string, number>;
  /** Percentile bootstrap interval of the topline metric over the evaluated samples (null unless done, or n < 2). */
  ci: { level: number; low: number; high: number; resamples: number } | null;
  /** Samples graded. */
  n: number;
  /** Why a cell was skipped (e.g. an image task for a text-only model). */
  reason?: string;
  /** The error that stopped the cell (first line), with the details after it. */
  error?: string;
  /** Content hash of the cell's inputs (model weights, task split, uids, grader and decoding settings). */
  key: string;
  /** grader_logs file relative to the grid folder, when samples were graded. */
  log: string | null;
  seconds: number;
  finished_at: string;
}

export interface EvalGrid {
  schema: typeof EVAL_GRID_SCHEMA;
  created_at: string;
  updated_at: string;
  models: GridModel[];
  tasks: GridTask[];
  cells: GridCell[];
}

/** The llama-cookbook's row form; error cells are written as it does (topline_metric 'error', score -1). */
export interface CookbookRow {
  model: string;
  task: string;
  topline_metric: string;
  score: number;
  metrics: Record<string, number>;
  error?: string;
}

/** One graded sample in grader_logs/<model>/<task>.jsonl. */
export interface GraderLogRow {
  uid: string;
  /** The prompt as sent: messages with image parts naming task-relative files. */
  prompt: unknown;
  prediction: string;
  reference: unknown;
  score: number;
  details: Record<string, unknown>;
  latency_ms: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** Task-relative image files of the sample, for galleries and the dashboard. */
  images: string[];
}
