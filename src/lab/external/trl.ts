/**
 * A `trl sft` config for one fine-tuning run (Qwen2-VL and other VLMs, or causal LMs): the fields of TRL's
 * ScriptArguments, SFTConfig (with transformers' TrainingArguments), ModelConfig (PEFT LoRA: r, alpha, dropout,
 * target modules, modules_to_save) and DatasetMixtureConfig, and the launch `trl sft --config <file>
 * [--num_processes N]` (TRL's CLI runs `accelerate launch` itself).
 *
 * LoRA targets default to the language model's projections by name (q/k/v/o_proj, gate/up/down_proj): Qwen2-VL's
 * vision blocks name theirs qkv/proj/fc1/fc2, so these do not reach the vision tower. `modules_to_save` trains
 * whole modules beside the adapters (e.g. `merger`, Qwen2-VL's projector). For vision data `max_length` is null,
 * as TRL asks, so truncation cannot cut image tokens. Component flags (training whole parts, no adapters) have no
 * `trl sft` option and are refused.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import type { ExternalJob, TrainerLaunch } from './job.ts';

const DEFAULT_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
/** Model types whose folders hold a processor (images go through it), as TRL's VLM path needs. */
const VISION_TYPES = new Set([
  'qwen2_vl',
  'qwen2_5_vl',
  'llava',
  'mllama',
  'idefics3',
  'smolvlm',
  'gemma3',
  'paligemma',
]);

/** TrainingArguments' lr_scheduler_type for the lab's schedule. */
const SCHEDULES: Record<string, string> = {
  cosine: 'cosine',
  linear: 'linear',
  constant: 'constant_with_warmup',
};

export function isVisionFolder(fromDir: string): boolean {
  const config = JSON.parse(readFileSync(join(fromDir, 'config.json'), 'utf8')) as { model_type?: string };
  return VISION_TYPES.has(config.model_type ?? '');
}

export function trlLaunch(job: ExternalJob, where: string): TrainerLaunch {
  const c = job.config;
  const s = job.settings;
  if (c.strategy.kind === 'components')
    throw new TlabError(
      `${where}: finetuning.external: component flags train whole parts without adapters, which trl sft has no option for; use trainer: torchtune (Llama-3.2-Vision) or strategies full / lora`,
    );
  const vision = isVisionFolder(job.fromDir);
  const t = c.training;
  const micro = t.micro_batch_size ?? t.batch_size;
  const accum = t.batch_size / (micro * job.ngpu);
  if (!Number.isInteger(accum) || accum < 1)
    throw new TlabError(
      `${where}: finetuning.training: batch_size ${t.batch_size} must be a multiple of micro_batch_size ${micro} × ${job.ngpu} GPU(s)`,
    );
  const lora = c.strategy.kind === 'lora' ? c.strategy.lora! : null;
  const config: Record<string, unknown> = {
    // ModelConfig
    model_name_or_path: job.fromDir,
    dtype: (s.dtype ?? 'bf16') === 'bf16' ? 'bfloat16' : 'float32',
    ...(lora
      ? {
          use_peft: true,
          lora_r: lora.r,
          lora_alpha: lora.alpha,
          lora_dropout: lora.dropout,
          lora_target_modules: s.lora_targets ?? lora.targets ?? DEFAULT_TARGETS,
          ...(s.modules_to_save ? { lora_modules_to_save: s.modules_to_save } : {}),
          use_rslora: lora.rs_lora,
        }
      : { use_peft: false }),
    // DatasetMixtureConfig / ScriptArguments
    datasets: [{ path: 'json', data_files: job.paths.dataset, split: 'train' }],
    dataset_train_split: 'train',
    // SFTConfig and TrainingArguments
    output_dir: job.paths.output,
    max_length: vision ? null : (c.seq_len ?? 1024),
    per_device_train_batch_size: micro,
    gradient_accumulation_steps: accum,
    learning_rate: t.lr ?? 2e-5,
    max_steps: job.steps,
    lr_scheduler_type: SCHEDULES[t.schedule ?? 'cosine'],
    warmup_steps: t.warmup_steps ?? 0,
    weight_decay: 0.01,
    max_grad_norm: t.clip_grad_norm ?? 0,
    seed: c.seed,
    bf16: (s.dtype ?? 'bf16') === 'bf16',
    gradient_checkpointing: true,
    logging_steps: 1,
    save_strategy: 'steps',
    save_steps: Math.max(1, Math.ceil(job.steps / 4)),
    eval_strategy: 'no',
    report_to: 'none',
    ...s.options,
  };
  const program = s.command ?? ['trl'];
  return {
    config,
    dataset: vision ? 'trl' : 'trl-text',
    argv: [
      ...program,
      'sft',
      '--config',
      job.paths.config,
      ...(job.ngpu > 1 ? ['--num_processes', String(job.ngpu)] : []),
    ],
  };
}

/** The last training loss TRL logged: trainer_state.json of the output folder or of its latest checkpoint-N/. */
export function lastTrlLoss(outputDir: string): { step: number; loss: number } | null {
  const candidates = [join(outputDir, 'trainer_state.json')];
  if (existsSync(outputDir))
    for (const d of readdirSync(outputDir)
      .map((n) => ({ n, m: /^checkpoint-(\d+)$/.exec(n) }))
      .filter((x) => x.m)
      .sort((a, b) => Number(b.m![1]) - Number(a.m![1])))
      candidates.push(join(outputDir, d.n, 'trainer_state.json'));
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    try {
      const state = JSON.parse(readFileSync(path, 'utf8')) as {
        log_history?: { step?: number; loss?: number }[];
      };
      const last = [...(state.log_history ?? [])].reverse().find((h) => typeof h.loss === 'number');
      if (last) return { step: last.step ?? 0, loss: last.loss! };
    } catch {
      // A half-written state file: try the next one.
    }
  }
  return null;
}
