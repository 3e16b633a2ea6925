/**
 * A torchtune recipe config for one fine-tuning run: Llama-3.2-Vision 11B/90B (LoRA or full, with the component
 * flags) and Llama 3.1/3.2 text models, with the dataset written as `{"messages": [...]}` rows (datasets.ts), the
 * model's own HF checkpoint files, and the launch `tune run [--nproc_per_node N] <recipe> --config <file>`.
 *
 * Component flags: the run trains the projector ("fusion": torchtune's fusion params — projection head,
 * cross-attention layers, fusion embeddings) and the parts the flag names; every one of `encoder_trainable`,
 * `decoder_trainable` and `fusion_trainable` is written explicitly. (The llama-cookbook set only the named parts to
 * True, leaving the others at the builder's defaults — encoder True, fusion True, decoder False — so its `fusion`
 * flag also trained the encoder.) LoRA runs use the LoRA builder with `"lora"`/`"frozen"` per component; that
 * builder refuses `"full"`, so full component training uses the full builder.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TlabError, validChoices } from '../../util/errors.ts';
import type { ExternalJob, TrainerLaunch } from './job.ts';

interface Builder {
  module: string;
  vision: boolean;
  /** FullModelHFCheckpointer model_type. */
  modelType: 'LLAMA3_VISION' | 'LLAMA3' | 'LLAMA3_2';
}

export const TORCHTUNE_BUILDERS: Record<string, Builder> = {
  llama3_2_vision_11b: {
    module: 'torchtune.models.llama3_2_vision',
    vision: true,
    modelType: 'LLAMA3_VISION',
  },
  llama3_2_vision_90b: {
    module: 'torchtune.models.llama3_2_vision',
    vision: true,
    modelType: 'LLAMA3_VISION',
  },
  llama3_1_8b: { module: 'torchtune.models.llama3_1', vision: false, modelType: 'LLAMA3' },
  llama3_1_70b: { module: 'torchtune.models.llama3_1', vision: false, modelType: 'LLAMA3' },
  llama3_2_1b: { module: 'torchtune.models.llama3_2', vision: false, modelType: 'LLAMA3_2' },
  llama3_2_3b: { module: 'torchtune.models.llama3_2', vision: false, modelType: 'LLAMA3_2' },
};

interface HfConfig {
  model_type?: string;
  hidden_size?: number;
  num_hidden_layers?: number;
  text_config?: { hidden_size?: number };
  vision_config?: { image_size?: number };
}

/** The builder for a Hugging Face model folder's config.json, or null when none matches. */
export function detectBuilder(config: HfConfig): string | null {
  if (config.model_type === 'mllama') {
    const h = config.text_config?.hidden_size;
    return h === 4096 ? 'llama3_2_vision_11b' : h === 8192 ? 'llama3_2_vision_90b' : null;
  }
  if (config.model_type === 'llama') {
    const key = `${config.hidden_size}/${config.num_hidden_layers}`;
    return (
      {
        '2048/16': 'llama3_2_1b',
        '3072/28': 'llama3_2_3b',
        '4096/32': 'llama3_1_8b',
        '8192/80': 'llama3_1_70b',
      }[key] ?? null
    );
  }
  return null;
}

/** The folder's safetensors shards, from model.safetensors.index.json or the folder listing. */
export function checkpointFiles(dir: string, where: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> })
      .weight_map;
    if (map) return [...new Set(Object.values(map))].sort();
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  if (files.length === 0) throw new TlabError(`${where}: ${dir} has no .safetensors weights for torchtune`);
  return files;
}

/** PEFT-style target names → torchtune's LoRA switches. */
export function torchtuneLoraTargets(targets: readonly string[], where: string) {
  const attn = new Map([
    ['q_proj', 'q_proj'],
    ['k_proj', 'k_proj'],
    ['v_proj', 'v_proj'],
    ['o_proj', 'output_proj'],
    ['output_proj', 'output_proj'],
  ]);
  const mlp = new Set(['gate_proj', 'up_proj', 'down_proj', 'w1', 'w2', 'w3', 'mlp']);
  const out = { lora_attn_modules: [] as string[], apply_lora_to_mlp: false, apply_lora_to_output: false };
  for (const t of targets) {
    if (attn.has(t)) out.lora_attn_modules.push(attn.get(t)!);
    else if (mlp.has(t)) out.apply_lora_to_mlp = true;
    else if (t === 'lm_head' || t === 'output') out.apply_lora_to_output = true;
    else
      throw new TlabError(
        `${where}: LoRA target '${t}' has no torchtune equivalent; valid: ${validChoices([...attn.keys(), ...mlp, 'lm_head'])}`,
      );
  }
  out.lora_attn_modules = [...new Set(out.lora_attn_modules)];
  if (out.lora_attn_modules.length === 0)
    throw new TlabError(
      `${where}: torchtune's LoRA builders need at least one attention projection among the targets`,
    );
  return out;
}

/** The component flags as torchtune's three switches (full builder: booleans), each one set. */
export function componentSwitches(components: Record<string, string>): {
  encoder_trainable: boolean;
  decoder_trainable: boolean;
  fusion_trainable: boolean;
} {
  return {
    encoder_trainable: components.encoder === 'full',
    decoder_trainable: components.decoder === 'full',
    fusion_trainable: components.projector === 'full',
  };
}

const DEFAULT_LORA_TARGETS = ['q_proj', 'v_proj', 'o_proj'];

export function torchtuneLaunch(job: ExternalJob, where: string): TrainerLaunch {
  const c = job.config;
  const s = job.settings;
  const hf = JSON.parse(readFileSync(join(job.fromDir, 'config.json'), 'utf8')) as HfConfig;
  const name = s.model ?? detectBuilder(hf);
  if (!name || !TORCHTUNE_BUILDERS[name])
    throw new TlabError(
      `${where}: finetuning.external.model: ${name ? `'${name}' is not a torchtune builder this tool knows` : `no torchtune builder for ${job.fromDir} (model_type ${hf.model_type})`}; valid: ${validChoices(Object.keys(TORCHTUNE_BUILDERS))}`,
    );
  const builder = TORCHTUNE_BUILDERS[name];
  const lora = c.strategy.kind === 'lora';
  if (c.strategy.kind === 'components' && !builder.vision)
    throw new TlabError(`${where}: component flags need a vision model; ${name} is text-only`);
  const model: Record<string, unknown> = { _component_: `${builder.module}.${lora ? 'lora_' : ''}${name}` };
  if (builder.vision) {
    if (lora) {
      const parts = s.lora_components ?? { encoder: 'frozen', decoder: 'lora', fusion: 'lora' };
      model.decoder_trainable = parts.decoder;
      model.encoder_trainable = parts.encoder;
      model.fusion_trainable = parts.fusion;
    } else {
      const sw =
        c.strategy.kind === 'components'
          ? componentSwitches(c.strategy.components ?? {})
          : { encoder_trainable: true, decoder_trainable: true, fusion_trainable: true };
      model.decoder_trainable = sw.decoder_trainable;
      model.encoder_trainable = sw.encoder_trainable;
      model.fusion_trainable = sw.fusion_trainable;
    }
  }
  if (lora) {
    const l = c.strategy.lora!;
    Object.assign(model, torchtuneLoraTargets(s.lora_targets ?? l.targets ?? DEFAULT_LORA_TARGETS, where), {
      lora_rank: l.r,
      lora_alpha: l.alpha,
      lora_dropout: l.dropout,
    });
  }
  const imageSize = hf.vision_config?.image_size ?? 560;
  if (builder.vision) model.image_size = imageSize;

  const tokenizerPath = s.tokenizer_path ?? join(job.fromDir, 'original', 'tokenizer.model');
  if (!existsSync(tokenizerPath))
    throw new TlabError(
      `${where}: finetuning.external.tokenizer_path: ${tokenizerPath} not found (torchtune reads the tiktoken tokenizer.model Meta ships in original/)`,
    );
  const tokenizer: Record<string, unknown> = builder.vision
    ? {
        _component_: 'torchtune.models.llama3_2_vision.llama3_2_vision_transform',
        path: tokenizerPath,
        image_size: imageSize,
        max_seq_len: c.seq_len,
      }
    : {
        _component_: 'torchtune.models.llama3.llama3_tokenizer',
        path: tokenizerPath,
        max_seq_len: c.seq_len,
      };

  const t = c.training;
  if ((t.schedule ?? 'cosine') !== 'cosine')
    throw new TlabError(
      `${where}: finetuning.training.schedule: torchtune runs use cosine with warmup; set schedule: cosine`,
    );
  const micro = t.micro_batch_size ?? t.batch_size;
  const accum = t.batch_size / (micro * job.ngpu);
  if (!Number.isInteger(accum) || accum < 1)
    throw new TlabError(
      `${where}: finetuning.training: batch_size ${t.batch_size} must be a multiple of micro_batch_size ${micro} × ${job.ngpu} GPU(s)`,
    );
  // torchtune counts epochs; max_steps become whole epochs of at most ceil(steps / epochs) steps.
  const stepsPerEpoch = Math.max(1, Math.floor(Math.ceil(job.trainRows / (micro * job.ngpu)) / accum));
  const epochs = Math.max(1, Math.ceil(job.steps / stepsPerEpoch));
  const resume = existsSync(join(job.paths.output, 'recipe_state', 'recipe_state.pt'));

  const config: Record<string, unknown> = {
    output_dir: job.paths.output,
    model,
    tokenizer,
    checkpointer: {
      _component_: 'torchtune.training.FullModelHFCheckpointer',
      checkpoint_dir: job.fromDir,
      checkpoint_files: checkpointFiles(job.fromDir, where),
      recipe_checkpoint: null,
      output_dir: job.paths.output,
      model_type: builder.modelType,
    },
    resume_from_checkpoint: resume,
    ...(lora ? { save_adapter_weights_only: false } : {}),
    dataset: {
      _component_: 'torchtune.datasets.chat_dataset',
      source: 'json',
      data_files: job.paths.dataset,
      split: 'train',
      conversation_column: 'messages',
      conversation_style: 'openai',
      train_on_input: false,
      packed: false,
    },
    ...(builder.vision ? { collate_fn: 'torchtune.data.padded_collate_tiled_images_and_mask' } : {}),
    seed: c.seed,
    shuffle: true,
    epochs,
    max_steps_per_epoch: Math.ceil(job.steps / epochs),
    batch_size: micro,
    gradient_accumulation_steps: accum,
    optimizer: { _component_: 'torch.optim.AdamW', lr: t.lr ?? 3e-4, weight_decay: 0.01 },
    lr_scheduler: {
      _component_: 'torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup',
      num_warmup_steps: t.warmup_steps ?? 0,
    },
    loss: { _component_: 'torchtune.modules.loss.LinearCrossEntropyLoss' },
    clip_grad_norm: t.clip_grad_norm ?? null,
    compile: false,
    device: 'cuda',
    dtype: s.dtype ?? 'bf16',
    enable_activation_checkpointing: true,
    metric_logger: { _component_: 'torchtune.training.metric_logging.DiskLogger', log_dir: job.paths.logs },
    log_every_n_steps: 1,
    log_peak_memory_stats: false,
    ...s.options,
  };
  for (const [k, v] of Object.entries(s.options ?? {}))
    if (k.includes('.')) {
      // Dotted keys address nested fields (optimizer.fused), as torchtune's command-line overrides do.
      delete config[k];
      const path = k.split('.');
      let node = config;
      for (const p of path.slice(0, -1)) {
        if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
        node = node[p] as Record<string, unknown>;
      }
      node[path[path.length - 1]] = v;
    }
  const recipe = `${lora ? 'lora' : 'full'}_finetune_${job.ngpu > 1 ? 'distributed' : 'single_device'}`;
  const program = s.command ?? ['tune'];
  return {
    config,
    dataset: 'torchtune',
    argv: [
      ...program,
      'run',
      ...(job.ngpu > 1 ? ['--nproc_per_node', String(job.ngpu)] : []),
      recipe,
      '--config',
      job.paths.config,
    ],
  };
}

/** The last `Step N | name:value ...` line of torchtune's DiskLogger files in `logDir`. */
export function lastTorchtuneStep(logDir: string): { step: number; loss: number | null } | null {
  if (!existsSync(logDir)) return null;
  let last: { step: number; loss: number | null } | null = null;
  for (const f of readdirSync(logDir)
    .filter((n) => /^log_\d+.*\.txt$/.test(n))
    .sort()) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      const m = /^Step (\d+) \|(.*)$/.exec(line.trim());
      if (!m) continue;
      const loss = /(?:^|\s)loss:([-+\d.eE]+)/.exec(m[2]);
      last = { step: Number(m[1]), loss: loss ? Number(loss[1]) : null };
    }
  }
  return last;
}
