/**
 * The experiment YAML's settings for running beyond one machine: `executor.slurm` (job arrays on a SLURM cluster:
 * resources, pre-emption, requeue limits, polling), `finetuning.external` (fine-tuning through torchtune, TRL or a
 * `tlab finetune` subprocess instead of in-process), and `evals.model_server` / `evals.model_server_args` (evaluating
 * through an OpenAI-compatible server that the eval run launches — vLLM, or `tlab serve` — or one already running).
 */
import { z } from 'zod';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const name = z.string().regex(NAME, 'names may use letters, digits and _ . -');

/** sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. */
const SLURM_TIME = /^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$/;
/** sbatch --mem: a number with an optional K/M/G/T suffix. */
const SLURM_MEMORY = /^\d+[KMGT]?$/;
/** One sbatch option, as it would follow `#SBATCH ` (a single line). */
const SBATCH_OPTION = /^--?[A-Za-z][A-Za-z0-9-]*(?:[= ].*)?$/;

/** Resources of the jobs of one stage (or of every stage). */
export const SlurmResourcesSchema = z
  .object({
    partition: z.string().min(1).optional(),
    account: z.string().min(1).optional(),
    qos: z.string().min(1).optional(),
    /** Wall-clock limit per array task (sbatch --time), e.g. 2:00:00 or 1-00:00:00. */
    time: z
      .string()
      .regex(SLURM_TIME, 'a SLURM time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS')
      .optional(),
    /** GPUs per task (sbatch --gpus), a count or type:count (a100:2). */
    gpus: z
      .union([z.int().min(0), z.string().regex(/^[A-Za-z0-9_-]+:\d+$/, 'a count or type:count')])
      .optional(),
    /** CPUs per task (sbatch --cpus-per-task); also the run's onnxruntime threads. */
    cpus: z.int().min(1).optional(),
    /** Memory per node (sbatch --mem), e.g. 32G. */
    memory: z.string().regex(SLURM_MEMORY, 'a size such as 32G, 4000M or 500000 (MB)').optional(),
    constraint: z.string().min(1).optional(),
    /** More sbatch options, one per line as they follow `#SBATCH ` (e.g. `--exclusive`, `--reservation=x`). */
    extra: z
      .array(z.string().regex(SBATCH_OPTION, 'one sbatch option such as --exclusive or --nice=10'))
      .optional(),
    /** Shell lines run before tlab in each job (module load ..., source venv/bin/activate). */
    setup: z
      .array(
        z
          .string()
          .min(1)
          .refine((s) => !s.includes('\n'), 'one line per entry'),
      )
      .optional(),
  })
  .strict();

const STAGE_NAMES = [
  'data',
  'tokenizer',
  'pretrain',
  'finetune',
  'eval',
  'features',
  'metrics',
  'summary',
] as const;

export const SlurmSettingsSchema = SlurmResourcesSchema.extend({
  /** At most this many tasks of an array run at once (sbatch --array=0-N%P). */
  max_parallel: z.int().min(1).optional(),
  /** A run requeued (pre-empted, timed out) more times than this is failed with the reason. */
  max_requeues: z.int().min(0).default(3),
  /** Seconds before the time limit at which SLURM sends USR2 (the run checkpoints and requeues itself). */
  signal_seconds: z.int().min(10).max(3600).default(90),
  /** The cluster's MaxArraySize: bigger batches are split into several arrays. */
  max_array_size: z.int().min(1).default(1001),
  /** Scheduler polling: first after poll_min_s, doubling up to poll_max_s (as submitit backs off). */
  poll_min_s: z.number().positive().default(1),
  poll_max_s: z.number().positive().default(60),
  /** The command that runs tlab on the compute nodes; default this Node.js and this checkout's bin/tlab.js. */
  tlab: z.string().min(1).optional(),
  /** Resources per stage, over the ones above (e.g. gpus for finetune and eval only). */
  stages: z.partialRecord(z.enum(STAGE_NAMES), SlurmResourcesSchema).optional(),
})
  .strict()
  .refine((s) => s.poll_min_s <= s.poll_max_s, {
    message: 'poll_min_s must not exceed poll_max_s',
    path: ['poll_min_s'],
  });

export type SlurmResources = z.infer<typeof SlurmResourcesSchema>;
export type SlurmSettings = z.infer<typeof SlurmSettingsSchema>;

/** A torchtune LoRA builder's per-component setting. */
const loraComponent = z.enum(['lora', 'frozen']);

export const ExternalTrainerSchema = z
  .object({
    /** torchtune (Llama-3.2-Vision and Llama text recipes), trl (`trl sft`, Qwen2-VL and causal LMs), or tlab (`tlab finetune` in a subprocess). */
    trainer: z.enum(['torchtune', 'trl', 'tlab']),
    /** Zoo models fine-tuned this way; default every zoo model. */
    models: z.array(name).min(1).optional(),
    /** The program to launch instead of the default (tune, trl, or this tlab), e.g. [srun, tune] or a wrapper. */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** GPUs per run (tune run --nproc_per_node, trl --num_processes); default finetuning.ngpu, else 1. */
    ngpu: z.int().min(1).optional(),
    /** torchtune: the tiktoken tokenizer.model; default finetuning.tokenizer_path, else <model>/original/tokenizer.model. */
    tokenizer_path: z.string().min(1).optional(),
    /** torchtune: the model builder (e.g. llama3_2_vision_11b); default from the model folder's config.json. */
    model: z.string().min(1).optional(),
    /** torchtune: which components carry adapters in LoRA runs (the others are frozen). */
    lora_components: z
      .object({ encoder: loraComponent, decoder: loraComponent, fusion: loraComponent })
      .strict()
      .optional(),
    /** torchtune and trl: LoRA target modules; default the attention projections. */
    lora_targets: z.array(z.string().min(1)).min(1).optional(),
    /** trl: modules trained fully beside the adapters (PEFT modules_to_save), e.g. [merger] for Qwen2-VL's projector. */
    modules_to_save: z.array(z.string().min(1)).min(1).optional(),
    /** Training precision; default bf16. */
    dtype: z.enum(['bf16', 'fp32']).optional(),
    /** More config keys written as they are (torchtune: dotted keys such as optimizer.fused; trl: SFTConfig fields). */
    options: z.record(z.string().min(1), z.unknown()).optional(),
    /** Environment variables for the trainer process. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
  })
  .strict();

export type ExternalTrainer = z.infer<typeof ExternalTrainerSchema>;

/** vLLM engine settings (the llama-cookbook's `evals.model_server_args`), each one `vllm serve` flag. */
export const ModelServerArgsSchema = z
  .object({
    tensor_parallel_size: z.int().min(1).optional(),
    pipeline_parallel_size: z.int().min(1).optional(),
    max_model_len: z.int().min(1).optional(),
    max_num_seqs: z.int().min(1).optional(),
    max_num_batched_tokens: z.int().min(1).optional(),
    enforce_eager: z.boolean().optional(),
    /** Items per prompt by modality, e.g. {image: 2} for image pairs. */
    limit_mm_per_prompt: z.record(z.string().min(1), z.int().min(0)).optional(),
    gpu_memory_utilization: z.number().gt(0).max(1).optional(),
    dtype: z.enum(['auto', 'half', 'float16', 'bfloat16', 'float', 'float32']).optional(),
    kv_cache_dtype: z.string().min(1).optional(),
    quantization: z.string().min(1).optional(),
    trust_remote_code: z.boolean().optional(),
    seed: z.int().optional(),
    max_lora_rank: z.int().min(1).optional(),
    max_loras: z.int().min(1).optional(),
    chat_template: z.string().min(1).optional(),
    allowed_local_media_path: z.string().min(1).optional(),
    download_dir: z.string().min(1).optional(),
  })
  .strict();

export type ModelServerArgs = z.infer<typeof ModelServerArgsSchema>;

export const ModelServerSchema = z
  .object({
    /** vllm: launch `vllm serve` per evaluated model; tlab: launch `tlab serve`; url: a server already running. */
    launch: z.enum(['vllm', 'tlab', 'url']).default('vllm'),
    /** For launch: url, the server's root (http://host:port). */
    url: z.string().url().optional(),
    /** For launch: url, the served model id of every evaluated model (default each model's name). */
    model: z.string().min(1).optional(),
    /** Environment variable with the API key (sent to a running server; given to a launched one). */
    api_key_env: z.string().min(1).optional(),
    /** The program to launch instead of `vllm serve` / this tlab's `serve` (e.g. [python, -m, vllm.entrypoints.openai.api_server]). */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** Host a launched server binds; default 127.0.0.1. */
    host: z.string().min(1).optional(),
    /** Port of a launched server; default a free one. */
    port: z.int().min(1).max(65535).optional(),
    /** How long a launched server may take to answer GET /health with 200. */
    health_timeout_s: z.number().positive().default(900),
    /** How long it may take to exit after SIGTERM before it is killed. */
    shutdown_timeout_s: z.number().positive().default(30),
    /** LoRA checkpoints: serve the merged folder (one server per checkpoint) or the base model with the adapter (--enable-lora). */
    lora: z.enum(['merged', 'adapter']).default('merged'),
    /** Concurrent requests per evaluated model. */
    concurrency: z.int().min(1).max(1024).optional(),
    timeout_s: z.number().positive().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.launch === 'url' && !s.url)
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: "required with launch: url (the server's root)",
      });
    if (s.launch !== 'url' && s.url)
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'only with launch: url' });
  });

export type ModelServer = z.infer<typeof ModelServerSchema>;
