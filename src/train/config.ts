/**
 * The YAML of `tlab pretrain` / `tlab finetune`: data (a built task folder), tokenizer, model (a config to
 * train from scratch, or a model folder to fine-tune), strategy and training settings. Validated with zod, every
 * section strict: errors name the file and the field path, and an unknown key gets did-you-mean (`model.config`
 * is checked against the model type's fields when the model is built).
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { TlabError } from '../util/errors.ts';
import { zodIssuesError } from '../util/zod-errors.ts';

const positive = z.number().positive();
const componentMode = z.enum(['full', 'lora', 'frozen']);

export const LoraSchema = z
  .object({
    r: z.int().min(1),
    alpha: positive,
    dropout: z.number().min(0).max(0.99).default(0),
    rs_lora: z.boolean().default(false),
    /** Module names (suffix match, as PEFT's target_modules) or /regex/ strings. */
    targets: z.array(z.string().min(1)).min(1),
  })
  .strict();

export const StrategySchema = z
  .object({
    kind: z.enum(['full', 'lora', 'components']).default('full'),
    lora: LoraSchema.optional(),
    components: z.record(z.string(), componentMode).optional(),
    learning_rates: z.record(z.string(), positive).optional(),
    weight_decay: z.number().min(0).default(0.01),
    /** QLoRA: store the frozen base's Linear weights 4-bit (nf4 as bitsandbytes, or int4); adapters stay float32. */
    quantize_base: z.enum(['nf4', 'int4']).optional(),
    /** Values per 4-bit scale (bitsandbytes' blocksize); default 64. */
    quant_block_size: z.int().min(16).multipleOf(16).optional(),
    /** nf4: quantize the block scales too (bnb_4bit_use_double_quant); default false. */
    double_quant: z.boolean().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const needsLora = s.kind === 'lora' || Object.values(s.components ?? {}).includes('lora');
    if (needsLora && !s.lora)
      ctx.addIssue({
        code: 'custom',
        path: ['lora'],
        message: 'LoRA is used, so r, alpha and targets are needed',
      });
    if (s.kind === 'components' && !s.components)
      ctx.addIssue({
        code: 'custom',
        path: ['components'],
        message: "kind 'components' needs a mode per component",
      });
    const fullyTrained = s.kind === 'full' || Object.values(s.components ?? {}).includes('full');
    if (s.quantize_base && fullyTrained)
      ctx.addIssue({
        code: 'custom',
        path: ['quantize_base'],
        message:
          'a 4-bit base is frozen: train it with LoRA (kind lora, or components that are lora or frozen)',
      });
    if (s.double_quant && s.quantize_base !== 'nf4')
      ctx.addIssue({ code: 'custom', path: ['double_quant'], message: 'only with quantize_base: nf4' });
    if (s.kind !== 'components' && s.components)
      ctx.addIssue({ code: 'custom', path: ['components'], message: 'only used with kind: components' });
  });

export const TrainingSchema = z
  .object({
    max_steps: z.int().min(1),
    batch_size: z.int().min(1).default(8),
    /** Per forward/backward pass; batch_size must be a multiple (gradient accumulation). */
    micro_batch_size: z.int().min(1).optional(),
    lr: positive.default(3e-4),
    optimizer: z.enum(['adamw', 'sgd']).default('adamw'),
    betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.999]),
    eps: positive.default(1e-8),
    momentum: z.number().min(0).max(1).default(0.9),
    schedule: z.enum(['constant', 'cosine', 'linear']).default('cosine'),
    warmup_steps: z.int().min(0).default(0),
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
    clip_grad_norm: positive.nullable().default(1),
    label_smoothing: z.number().min(0).max(1).default(0),
    eval_every: z.int().min(0).default(0),
    eval_batches: z.int().min(1).default(4),
    save_every: z.int().min(0).default(0),
    keep_checkpoints: z.int().min(1).default(3),
    log_every: z.int().min(1).default(1),
    /**
     * Optimizer steps per onnxruntime run (inside an ONNX Loop): onnxruntime-node copies every output (all
     * weights and optimizer state) into new memory after each run, so several steps per run amortise that copy
     * (bench/engine-loop: 1.3–1.5x faster steps for a 30M-parameter model at a small batch). Default 4; 1 with gradient accumulation.
     */
    steps_per_run: z.int().min(1).optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.micro_batch_size && t.batch_size % t.micro_batch_size !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['micro_batch_size'],
        message: `must divide batch_size ${t.batch_size}`,
      });
    if (t.micro_batch_size && t.micro_batch_size < t.batch_size && (t.steps_per_run ?? 1) > 1)
      ctx.addIssue({
        code: 'custom',
        path: ['steps_per_run'],
        message: 'cannot be combined with gradient accumulation',
      });
  });

export const TrainConfigSchema = z
  .object({
    /** Run name: checkpoints/<name>, logs/<name>, models/<name> under `out`. */
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, dot, dash and underscore'),
    out: z.string().default('experiments/default'),
    seed: z.int().default(0),
    /**
     * What is learnt: next tokens of the conversations (causal LMs, VLMs), or the task's labels (its label_column)
     * by a classifier: an image classifier (ViT / CLIP vision + head) or a sequence classifier (GPT-2 / Llama +
     * score head); see train/run-classifier-training.ts.
     */
    objective: z.enum(['causal-lm', 'image-classifier', 'sequence-classifier']).default('causal-lm'),
    data: z
      .object({
        /** A task folder built by `tlab data build` (formatted_datasets/<task>). */
        task: z.string().min(1),
        train_split: z.string().default('train'),
        eval_split: z.string().nullable().default('validation'),
        /** Loss on assistant turns only (default) or on every token. */
        train_on: z.enum(['assistant', 'all']).default('assistant'),
        /** Tokens per example (prompts are cut from the left); needed by text models, not by image classifiers. */
        seq_len: z.int().min(2).optional(),
        /** Train although the training split has unknown tokens above the threshold (or in answers). */
        allow_unknown_tokens: z.boolean().optional(),
        /** Share of a split's tokens that may be the unknown token; default 0.01 (answer tokens: none). */
        unknown_token_threshold: z.number().min(0).max(1).optional(),
      })
      .strict(),
    tokenizer: z
      .object({
        /** A folder with tokenizer.json; default: the model folder's. */
        path: z.string().optional(),
        /** Build a character- or word-level tokenizer from the training data (pre-training from scratch). */
        build: z.enum(['char', 'word']).optional(),
        /** Build it from these task folders' training splits instead: one vocabulary shared by a zoo. */
        from_tasks: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict()
      .refine((t) => !t.from_tasks || t.build, {
        message: 'from_tasks goes with build',
        path: ['from_tasks'],
      })
      .default({}),
    model: z
      .object({
        /** A Hugging Face model folder (or one this tool saved) to start from. */
        from: z.string().optional(),
        /** Architecture for training from scratch (config.json fields; vocab_size defaults to the tokenizer's). */
        config: z.record(z.string(), z.unknown()).optional(),
        /** A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) merged into `from` first. */
        adapter: z.string().min(1).optional(),
      })
      .strict()
      .refine((m) => Boolean(m.from) !== Boolean(m.config), {
        message: 'give either model.from or model.config',
      })
      .refine((m) => !m.adapter || m.from, {
        path: ['adapter'],
        message: 'an adapter is loaded onto a model folder: give model.from too',
      }),
    strategy: StrategySchema.default({ kind: 'full', weight_decay: 0.01 }),
    training: TrainingSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.objective !== 'image-classifier' && c.data.seq_len === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'seq_len'],
        message: `required for objective ${c.objective} (tokens per example)`,
      });
    if (c.objective !== 'image-classifier' && !c.tokenizer.path && !c.tokenizer.build && !c.model.from)
      ctx.addIssue({
        code: 'custom',
        path: ['tokenizer'],
        message: 'training from scratch needs tokenizer.path or tokenizer.build',
      });
  });

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

export function parseTrainConfig(value: unknown, file: string): TrainConfig {
  const r = TrainConfigSchema.safeParse(value);
  if (!r.success) throw zodIssuesError(file, [], r.error);
  return r.data;
}

export function loadTrainConfig(file: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TlabError(
      `${file}: cannot read the training config (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  let value: unknown;
  try {
    value = YAML.parse(text);
  } catch (error) {
    throw new TlabError(`${file}: not valid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  return parseTrainConfig(value, file);
}
