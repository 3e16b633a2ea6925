/**
 * The experiment YAML: one file for a whole study. `tasks` as the data builder takes them; `models` (the zoo:
 * model folders, or models pre-trained here on a source task); `finetuning` (strategies × LoRA ranks × component
 * flags × tasks × seeds); `evals` (the eval grid); `metrics` (transferability estimators on every model × target
 * task, against the real fine-tuned scores); `executor`. Every object is strict, so a misspelled key is an error
 * with did-you-mean (util/zod-errors.ts).
 */
import { z } from 'zod';
import { TaskConfigSchema } from '../../data/config.ts';
import { LoraSchema, TrainingSchema } from '../../train/config.ts';
import {
  ExternalTrainerSchema,
  ModelServerArgsSchema,
  ModelServerSchema,
  SlurmSettingsSchema,
} from './cluster-schema.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const RunNameSchema = z
  .string()
  .regex(NAME, 'names may use letters, digits and _ . - (they become folder names)');

/** Training settings of the lab: the trainer's, with epochs as an alternative to max_steps. */
export const LabTrainingSchema = z
  .object({
    ...TrainingSchema.shape,
    max_steps: z.int().min(1).optional(),
    /** Passes over the training split; max_steps = ceil(epochs × rows / batch_size). */
    epochs: z.number().positive().optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.micro_batch_size && t.batch_size % t.micro_batch_size !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['micro_batch_size'],
        message: `must divide batch_size ${t.batch_size}`,
      });
    if (t.max_steps !== undefined && t.epochs !== undefined)
      ctx.addIssue({ code: 'custom', path: ['epochs'], message: 'give max_steps or epochs, not both' });
  });

export const TokenizerSpecSchema = z
  .object({
    /** A folder with tokenizer.json. */
    path: z.string().min(1).optional(),
    /** Build a character- or word-level tokenizer from the data. */
    build: z.enum(['char', 'word']).optional(),
    /** Build it from these tasks' training splits together (one vocabulary for a whole zoo). */
    from_tasks: z.array(RunNameSchema).min(1).optional(),
  })
  .strict()
  .refine((t) => Boolean(t.path) !== Boolean(t.build), { message: 'give either path or build' })
  .refine((t) => !t.from_tasks || t.build, { message: 'from_tasks goes with build', path: ['from_tasks'] });

export const PretrainSchema = z
  .object({
    /** The source task the model is pre-trained on. */
    task: RunNameSchema,
    /** A shared tokenizer's name (under `tokenizers`), or a spec of its own; default {build: word}. */
    tokenizer: z.union([RunNameSchema, TokenizerSpecSchema]).optional(),
    /** What is trained: a causal LM / VLM (default, loss on the assistant turns) or a classifier on the task's labels. */
    objective: z.enum(['causal-lm', 'image-classifier', 'sequence-classifier']).default('causal-lm'),
    /** config.json fields of the architecture (training from scratch)... */
    config: z.record(z.string(), z.unknown()).optional(),
    /** ...or another zoo model to continue training (its weights and tokenizer). */
    from: RunNameSchema.optional(),
    seq_len: z.int().min(2).optional(),
    training: LabTrainingSchema,
    seed: z.int().optional(),
  })
  .strict()
  .refine((p) => Boolean(p.config) !== Boolean(p.from), {
    message: 'give either config (from scratch) or from (a zoo model)',
  });

export const ZooModelSchema = z
  .object({
    /** An existing model folder (Hugging Face layout). */
    path: z.string().min(1).optional(),
    /** Or pre-train it here. */
    pretrain: PretrainSchema.optional(),
    /** Tasks this model is fine-tuned on, instead of finetuning.tasks (e.g. each zoo family on its own target). */
    finetune_on: z.array(RunNameSchema).min(1).optional(),
    /** Training settings of this model's fine-tunes over finetuning.training (e.g. more steps for a small model). */
    finetune_training: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .refine((m) => Boolean(m.path) !== Boolean(m.pretrain), { message: 'give either path or pretrain' });

/** The llama-cookbook's component flags (VLMs): each trains the projector and the named parts, nothing else. */
export const COMPONENT_FLAGS = [
  'fusion',
  'fusion+encoder',
  'fusion+decoder',
  'fusion+encoder+decoder',
] as const;
export type ComponentFlag = (typeof COMPONENT_FLAGS)[number];

export const FinetuningSchema = z
  .object({
    /** Tasks to fine-tune on; default every task with a train split. */
    tasks: z.array(RunNameSchema).min(1).optional(),
    /** Zoo models to fine-tune; default every zoo model that fits the task. */
    models: z.array(RunNameSchema).min(1).optional(),
    /** Full fine-tuning (and 'lora' with lora_ranks). */
    strategies: z.array(z.enum(['full', 'lora'])).optional(),
    lora_ranks: z.array(z.int().min(1, 'a LoRA rank is at least 1')).optional(),
    /** Adapter settings for every rank; alpha defaults to 2·r. */
    lora: LoraSchema.partial().omit({ r: true }).strict().optional(),
    fusion: z.boolean().optional(),
    'fusion+encoder': z.boolean().optional(),
    'fusion+decoder': z.boolean().optional(),
    'fusion+encoder+decoder': z.boolean().optional(),
    seeds: z.array(z.int()).min(1).optional(),
    training: LabTrainingSchema.optional(),
    /** Per-component learning rates (encoder, projector, decoder, head). */
    learning_rates: z.record(z.string(), z.number().positive()).optional(),
    seq_len: z.int().min(2).optional(),
    /** Refuse nothing when the tokenizer maps answers to the unknown token (see the README). */
    allow_unknown_tokens: z.boolean().optional(),
    // The llama-cookbook's torchtune wiring: kept for the external executor, unused in-process.
    model_path: z.string().min(1).optional(),
    tokenizer_path: z.string().min(1).optional(),
    fft_torchtune_config: z.string().optional(),
    lora_torchtune_config: z.string().optional(),
    ngpu: z.int().min(1).optional(),
    distributed: z.boolean().optional(),
    epochs: z.number().positive().optional(),
    batch_size: z.int().min(1).optional(),
    /** Fine-tune through torchtune, TRL or a tlab subprocess (cluster-schema.ts). */
    external: ExternalTrainerSchema.optional(),
  })
  .strict();

export const EvalsSchema = z
  .object({
    /** Tasks every model is evaluated on; default every task with a test (or validation) split. */
    tasks: z.array(RunNameSchema).min(1).optional(),
    /** Evaluate the zoo models as they are (zero-shot baselines); default true. */
    zero_shot: z.boolean().optional(),
    nb_eval_samples: z.int().min(1).nullable().optional(),
    checkpoint_to_eval: z.int().min(-1).optional(),
    /** Grader per task (default: the task's own). */
    graders: z.record(RunNameSchema, z.string().min(1)).optional(),
    grader_options: z.record(RunNameSchema, z.record(z.string(), z.unknown())).optional(),
    inference: z.record(z.string(), z.unknown()).optional(),
    /** The llama-cookbook's name for inference. */
    inference_params: z.record(z.string(), z.unknown()).optional(),
    batch_size: z.int().min(1).optional(),
    bootstrap: z.int().min(0).optional(),
    /** vLLM launch settings: used by the external executor. */
    model_server_args: ModelServerArgsSchema.optional(),
    /** Evaluate through a launched vLLM / tlab serve process, or a running server (cluster-schema.ts). */
    model_server: ModelServerSchema.optional(),
  })
  .strict();

export const MetricsSchema = z
  .object({
    /** Estimator names (tlab metrics list), or {name, id, options}. */
    estimators: z
      .array(
        z.union([
          z.string().min(1),
          z
            .object({
              name: z.string().min(1),
              id: z.string().min(1).optional(),
              options: z.record(z.string(), z.unknown()).optional(),
            })
            .strict(),
        ]),
      )
      .min(1),
    /** Target tasks; default the fine-tuning tasks. */
    target_tasks: z.array(RunNameSchema).min(1).optional(),
    /** Zoo models to score; default every zoo model fine-tuned on the target. */
    models: z.array(RunNameSchema).min(1).optional(),
    n_samples: z
      .array(z.union([z.int().min(2), z.literal('all')]))
      .min(1)
      .optional(),
    seeds: z.array(z.int().min(0)).min(1).optional(),
    features: z
      .object({
        pooling: z.enum(['last', 'mean', 'cls', 'pooled']).optional(),
        layer: z.int().optional(),
        split: z.string().min(1).optional(),
        limit: z.int().min(1).optional(),
        /** Source-model probabilities for LEEP/NCE (tlab metrics features --source-probs); default auto. */
        source_probs: z.enum(['auto', 'none', 'head', 'vocab', 'top-k']).optional(),
        /** Tokens of the top-k label space (default 256). */
        top_k: z.int().min(2).optional(),
      })
      .strict()
      .optional(),
    /** Which fine-tuned score is the "actual" one the estimators predict: the strategy's runs on the target. */
    actual: z
      .object({ strategy: z.string().min(1) })
      .strict()
      .optional(),
  })
  .strict();

export const ExecutorSchema = z
  .object({
    kind: z.enum(['inline', 'workers', 'slurm']).default('inline'),
    /** Child processes for `workers`. */
    workers: z.int().min(1).max(256).optional(),
    /** Intra-op threads per worker; default cores / workers (at least 1). */
    threads: z.int().min(1).optional(),
    /** Job arrays on a SLURM cluster (cluster-schema.ts). */
    slurm: SlurmSettingsSchema.optional(),
  })
  .strict();

export const ExperimentSchema = z
  .object({
    name: RunNameSchema,
    /** Output folder; default experiments/<name> (relative to the directory tlab runs in). */
    out: z.string().min(1).optional(),
    seed: z.int().default(0),
    tasks: z.record(RunNameSchema, TaskConfigSchema).refine((t) => Object.keys(t).length > 0, 'no tasks'),
    tokenizers: z.record(RunNameSchema, TokenizerSpecSchema).optional(),
    models: z.record(RunNameSchema, ZooModelSchema).refine((m) => Object.keys(m).length > 0, 'no models'),
    finetuning: FinetuningSchema.optional(),
    evals: EvalsSchema.optional(),
    metrics: MetricsSchema.optional(),
    executor: ExecutorSchema.optional(),
    /** Write the HTML report at the end; default true. */
    report: z.boolean().optional(),
  })
  .strict();

export type ExperimentConfig = z.infer<typeof ExperimentSchema>;
export type ZooModelConfig = z.infer<typeof ZooModelSchema>;
export type LabTraining = z.infer<typeof LabTrainingSchema>;
export type TokenizerSpec = z.infer<typeof TokenizerSpecSchema>;
