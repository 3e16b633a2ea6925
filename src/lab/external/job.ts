/** What an external trainer gets: one planned fine-tuning run, resolved to absolute paths and a step count. */
import type { ExternalTrainer } from '../config/cluster-schema.ts';
import type { LabTraining } from '../config/schema.ts';
import type { DatasetFormat } from './datasets.ts';

/** A finetune run's config as the planner writes it (plan.ts). */
export interface FinetuneRunConfig {
  model: string;
  from: string;
  task: string;
  strategy: {
    kind: 'full' | 'lora' | 'components';
    lora?: { r: number; alpha: number; dropout: number; rs_lora: boolean; targets: string[] | null };
    /** components: projector, encoder, decoder → full | frozen */
    components?: Record<string, string>;
  };
  training: LabTraining;
  learning_rates: Record<string, number> | null;
  seq_len: number | null;
  seed: number;
  external?: ExternalTrainer & { tokenizer_path?: string };
}

export interface ExternalJob {
  /** The run's name (its folders under the experiment). */
  run: string;
  config: FinetuneRunConfig;
  settings: ExternalTrainer & { tokenizer_path?: string };
  /** The model folder to start from and the built task folder (absolute). */
  fromDir: string;
  taskDir: string;
  /** Optimizer steps (max_steps, or from epochs). */
  steps: number;
  /** Rows of the training split. */
  trainRows: number;
  /** GPUs (processes) for the run. */
  ngpu: number;
  paths: {
    /** external/<run>/: the dataset, the config and the trainer's log. */
    work: string;
    dataset: string;
    config: string;
    log: string;
    /** finetuned_checkpoints/<run>: where the model comes back. */
    output: string;
    /** finetune_logs/<run>. */
    logs: string;
  };
}

/** What a trainer kind makes of a job: its config document, its dataset format and its launch command. */
export interface TrainerLaunch {
  config: Record<string, unknown>;
  dataset: DatasetFormat | null;
  argv: string[];
}
