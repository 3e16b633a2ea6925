/**
 * Stages pretrain and finetune: a zoo model trained from scratch on its source task, or a zoo model fine-tuned on
 * a task with one strategy (full, LoRA at a rank, or the components a flag names), through the trainer. Outputs
 * follow the experiment layout (zoo/, zoo_logs/, finetuned_checkpoints/, finetune_logs/, checkpoints/); training
 * checkpoints as it goes, so a run interrupted at any moment resumes and reproduces the same loss curve.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readTaskManifest } from '../../data/read.ts';
import { parseTrainConfig, type TrainConfig } from '../../train/config.ts';
import { runTraining } from '../../train/run-training.ts';
import { TlabError } from '../../util/errors.ts';
import type { LabTraining } from '../config/schema.ts';
import { externalTrainerOf, runExternalFinetune } from '../external/finetune.ts';
import { inExperiment, runWhere, type StageContext, type StageResult } from './context.ts';

/** Default LoRA targets per architecture: attention projections (PEFT's usual choice). */
const LORA_TARGETS: Record<string, string[]> = {
  vit: ['query', 'value'],
  clip_vision_model: ['q_proj', 'v_proj'],
  clip: ['q_proj', 'v_proj'],
  gpt2: ['c_attn', 'c_proj'],
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  qwen2: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
};

interface ModelConfigJson {
  model_type?: string;
  n_positions?: number;
  max_position_embeddings?: number;
  text_config?: ModelConfigJson;
}

function readModelConfig(dir: string, where: string): ModelConfigJson {
  try {
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as ModelConfigJson;
  } catch (error) {
    throw new TlabError(
      `${where}: ${dir}: cannot read config.json (${(error as Error).message.split('\n')[0]})`,
    );
  }
}

/** The text model's config (a VLM's text_config). */
function textConfig(c: ModelConfigJson): ModelConfigJson {
  return c.model_type === 'llava' && c.text_config ? c.text_config : c;
}

/** Steps of the run: max_steps, or ceil(epochs × train rows / batch size). */
export function trainingSteps(training: LabTraining, taskDir: string, where: string): number {
  if (training.max_steps !== undefined) return training.max_steps;
  if (training.epochs === undefined) throw new TlabError(`${where}: training: give max_steps or epochs`);
  const rows = readTaskManifest(taskDir).splits.train?.rows;
  if (!rows) throw new TlabError(`${where}: ${taskDir} has no train split`);
  return Math.max(1, Math.ceil((training.epochs * rows) / training.batch_size));
}

function trainerSettings(training: LabTraining, steps: number): TrainConfig['training'] {
  const { epochs: _epochs, ...rest } = training;
  return {
    ...rest,
    max_steps: steps,
    eval_every: training.eval_every || steps,
    // Checkpoints four times per run (unless set), so an interrupted run loses at most a quarter.
    save_every: training.save_every || Math.max(1, Math.ceil(steps / 4)),
  };
}

/**
 * The trainer's resumable state, `checkpoints/<name>/<run id>/`: keyed by the run's content-addressed id, so a run
 * whose settings changed starts afresh instead of meeting the old run's checkpoints (which the trainer rightly
 * refuses); the superseded runs' folders under the same name are removed.
 */
function trainerCheckpoints(ctx: StageContext, name: string): string {
  const parent = join(ctx.plan.out, 'checkpoints', name);
  if (existsSync(parent))
    for (const entry of readdirSync(parent))
      if (entry !== ctx.run.id) rmSync(join(parent, entry), { recursive: true, force: true });
  return join(parent, ctx.run.id);
}

function hasSplit(taskDir: string, split: string): boolean {
  return Boolean(readTaskManifest(taskDir).splits[split]);
}

function summary(r: Awaited<ReturnType<typeof runTraining>>): StageResult {
  return {
    steps: r.steps,
    resumed_from: r.resumedFrom,
    train_loss: r.trainLoss,
    eval_loss: r.eval?.loss ?? null,
    eval_accuracy: r.eval?.accuracy ?? null,
    eval_exact_match: r.eval?.exact_match ?? null,
    eval_split: r.evalSplit,
    chance_exact_match: r.baseline?.exact_match ?? null,
    unknown_tokens: r.unknownTokens.map((u) => ({ ...u })),
    step_seconds: r.stepSeconds,
  };
}

export async function runPretrainStage(ctx: StageContext): Promise<StageResult> {
  const c = ctx.run.config as {
    model: string;
    task: string;
    objective: string;
    config: Record<string, unknown> | null;
    /** Continue training this zoo model (folder relative to the experiment) instead of starting from scratch. */
    from: string | null;
    seq_len: number | null;
    training: LabTraining;
    seed: number;
    tokenizer: { dir?: string; build?: 'char' | 'word' } | null;
  };
  const where = runWhere(ctx);
  const taskDir = join(ctx.plan.out, 'formatted_datasets', c.task);
  const steps = trainingSteps(c.training, taskDir, where);
  // An image classifier reads pixels: no tokenizer, no sequence length.
  const image = c.objective === 'image-classifier';
  const config = parseTrainConfig(
    {
      name: `zoo-${c.model}`,
      out: ctx.plan.out,
      seed: c.seed,
      objective: c.objective,
      data: {
        task: taskDir,
        ...(image ? {} : { seq_len: c.seq_len ?? 128 }),
        eval_split: hasSplit(taskDir, 'validation') ? 'validation' : null,
      },
      ...(c.from
        ? { model: { from: inExperiment(ctx, c.from) } }
        : {
            ...(image
              ? {}
              : {
                  tokenizer: c.tokenizer?.dir
                    ? { path: inExperiment(ctx, c.tokenizer.dir) }
                    : { build: c.tokenizer?.build ?? 'word' },
                }),
            model: { config: c.config },
          }),
      training: trainerSettings(c.training, steps),
    },
    where,
  );
  const r = await runTraining(config, {
    configFile: where,
    quiet: ctx.quiet,
    signal: ctx.signal,
    mode: c.from ? 'finetune' : 'pretrain',
    paths: {
      checkpoints: trainerCheckpoints(ctx, `zoo-${c.model}`),
      logs: join(ctx.plan.out, 'zoo_logs', c.model),
      model: join(ctx.plan.out, 'zoo', c.model),
    },
  });
  return summary(r);
}

export async function runFinetuneStage(ctx: StageContext): Promise<StageResult> {
  const c = ctx.run.config as {
    model: string;
    from: string;
    task: string;
    strategy: {
      kind: string;
      lora?: { r: number; alpha: number; dropout: number; rs_lora: boolean; targets: string[] | null };
      components?: Record<string, string>;
    };
    training: LabTraining;
    learning_rates: Record<string, number> | null;
    seq_len: number | null;
    seed: number;
    /** Set for classifiers (the planner leaves it out for language models). */
    objective?: 'image-classifier' | 'sequence-classifier';
    allow_unknown_tokens?: boolean;
  };
  const where = runWhere(ctx);
  // finetuning.external: torchtune and TRL get the run's settings; tlab finetune gets the same TrainConfig as below.
  const external = externalTrainerOf(ctx);
  if (external && external.trainer !== 'tlab' && c.objective)
    throw new TlabError(
      `${where}: finetuning.external: ${external.trainer} fine-tunes language models; a ${c.objective} trains in-process or with trainer: tlab`,
    );
  if (external && external.trainer !== 'tlab') return runExternalFinetune(ctx, null);
  const from = inExperiment(ctx, c.from);
  const taskDir = join(ctx.plan.out, 'formatted_datasets', c.task);
  const modelConfig = readModelConfig(from, where);
  const text = textConfig(modelConfig);
  const context = text.n_positions ?? text.max_position_embeddings ?? 128;
  const strategy: Record<string, unknown> = { kind: c.strategy.kind };
  if (c.strategy.lora) {
    const targets = c.strategy.lora.targets ?? LORA_TARGETS[text.model_type ?? ''];
    if (!targets)
      throw new TlabError(
        `${where}: finetuning.lora.targets: required for a ${text.model_type} model (no default)`,
      );
    strategy.lora = { ...c.strategy.lora, targets };
  }
  if (c.strategy.components) strategy.components = c.strategy.components;
  if (c.learning_rates) strategy.learning_rates = c.learning_rates;
  const steps = trainingSteps(c.training, taskDir, where);
  const config = parseTrainConfig(
    {
      name: ctx.run.name,
      out: ctx.plan.out,
      seed: c.seed,
      ...(c.objective ? { objective: c.objective } : {}),
      data: {
        task: taskDir,
        ...(c.objective === 'image-classifier' ? {} : { seq_len: Math.min(c.seq_len ?? context, context) }),
        eval_split: hasSplit(taskDir, 'validation') ? 'validation' : null,
        ...(c.allow_unknown_tokens ? { allow_unknown_tokens: true } : {}),
      },
      model: { from },
      strategy,
      training: trainerSettings(c.training, steps),
    },
    where,
  );
  if (external) return runExternalFinetune(ctx, config);
  const r = await runTraining(config, {
    configFile: where,
    quiet: ctx.quiet,
    signal: ctx.signal,
    mode: 'finetune',
    paths: {
      checkpoints: trainerCheckpoints(ctx, ctx.run.name),
      logs: join(ctx.plan.out, 'finetune_logs', ctx.run.name),
      model: join(ctx.plan.out, 'finetuned_checkpoints', ctx.run.name),
    },
  });
  return summary(r);
}
