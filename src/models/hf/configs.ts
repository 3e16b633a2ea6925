/**
 * config.json parsing per model_type with zod, following Hugging Face's configuration_*.py defaults. A model
 * folder's own config must carry the size fields (save_pretrained always writes model-specific keys, so a missing
 * one means a broken file); nested text_config/vision_config fall back to HF's class defaults, because HF's
 * diff-saving drops sub-config values equal to them. Unknown keys are kept, so a loaded config saves back whole.
 * Both transformers-4 (`torch_dtype`, `rope_theta`/`rope_scaling`) and transformers-5 (`dtype`, `rope_parameters`)
 * spellings are accepted.
 */
import { z } from 'zod';
import { didYouMean } from '../../util/did-you-mean.ts';
import { TlabError } from '../../util/errors.ts';
import { describeJson, isJsonObject, type JsonObject } from '../../util/json-file.ts';
import type { ClipVisionConfig } from '../clip-vision.ts';
import type { Gpt2Config } from '../gpt2.ts';
import type { LlamaConfig } from '../llama.ts';
import type { Qwen2VlConfig } from '../qwen2-vl.ts';
import type { VitConfig } from '../vit.ts';
import { type LlavaConfig, PROJECTOR_TYPES } from '../vlm.ts';
import { parseQwen2VlConfig } from './qwen2-vl-config.ts';

/** Fields every config may carry (PretrainedConfig). */
export interface CommonConfigFields {
  architectures?: string[] | null;
  torch_dtype?: string | null;
  dtype?: string | null;
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  num_labels?: number;
  pad_token_id?: number | null;
}

/** A `clip` config (CLIPModel / CLIPForImageClassification): only its vision half is built here. */
export interface ClipConfig {
  model_type: 'clip';
  vision_config: ClipVisionConfig;
}

export type HfConfig = (
  | Gpt2Config
  | LlamaConfig
  | VitConfig
  | ClipVisionConfig
  | ClipConfig
  | LlavaConfig
  | Qwen2VlConfig
) &
  CommonConfigFields;

export const MODEL_TYPES = [
  'gpt2',
  'llama',
  'qwen2',
  'vit',
  'clip_vision_model',
  'clip',
  'llava',
  'qwen2_vl',
] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

const NOT_SUPPORTED: Record<string, string> = {
  qwen2_vl_text: 'it is the text half of a qwen2_vl config; load the folder whose model_type is qwen2_vl',
  mistral: 'mistral (sliding-window Llama) is not implemented',
};

const pos = z.int().min(1);
const prob = z.number().min(0).max(1);
const tokenId = z.int().nullable();

/** `required` fields are mandatory at the top level; in sub-configs they take HF's class default. */
function sized<T extends z.ZodType>(schema: T, required: boolean, fallback: z.output<T>) {
  return required ? schema : schema.default(fallback as never);
}

const common = {
  architectures: z.array(z.string()).nullable().optional(),
  torch_dtype: z.string().nullable().optional(),
  dtype: z.string().nullable().optional(),
  id2label: z.record(z.string(), z.string()).optional(),
  label2id: z.record(z.string(), z.int()).optional(),
  num_labels: pos.optional(),
};

function gpt2Schema(required: boolean) {
  return z
    .looseObject({
      ...common,
      model_type: z.literal('gpt2'),
      vocab_size: sized(pos, required, 50257),
      n_positions: sized(pos, required, 1024),
      n_embd: sized(pos, required, 768),
      n_layer: sized(pos, required, 12),
      n_head: sized(pos, required, 12),
      n_inner: pos.nullable().optional(),
      activation_function: z.string().default('gelu_new'),
      resid_pdrop: prob.default(0.1),
      embd_pdrop: prob.default(0.1),
      attn_pdrop: prob.default(0.1),
      layer_norm_epsilon: z.number().positive().default(1e-5),
      initializer_range: z.number().positive().default(0.02),
      scale_attn_weights: z.boolean().default(true),
      scale_attn_by_inverse_layer_idx: z.boolean().default(false),
      tie_word_embeddings: z.boolean().default(true),
      bos_token_id: tokenId.default(50256),
      eos_token_id: tokenId.default(50256),
      pad_token_id: tokenId.optional(),
    })
    .superRefine((c, ctx) => {
      if (c.n_embd % c.n_head !== 0)
        ctx.addIssue({
          code: 'custom',
          path: ['n_head'],
          message: `${c.n_head} does not divide n_embd ${c.n_embd}`,
        });
      if (c.n_inner !== undefined && c.n_inner !== null && c.n_inner !== 4 * c.n_embd)
        ctx.addIssue({
          code: 'custom',
          path: ['n_inner'],
          message: 'only n_inner = 4·n_embd (or null) is supported',
        });
    });
}

const ropeDict = z.record(z.string(), z.unknown()).nullable().optional();

function llamaSchema(type: 'llama' | 'qwen2', required: boolean) {
  const qwen = type === 'qwen2';
  return z
    .looseObject({
      ...common,
      model_type: z.literal(type),
      vocab_size: sized(pos, required, qwen ? 151936 : 32000),
      hidden_size: sized(pos, required, 4096),
      intermediate_size: sized(pos, required, qwen ? 22016 : 11008),
      num_hidden_layers: sized(pos, required, 32),
      num_attention_heads: sized(pos, required, 32),
      num_key_value_heads: pos.nullable().default(qwen ? 32 : null),
      head_dim: pos.nullable().optional(),
      hidden_act: z.string().default('silu'),
      max_position_embeddings: pos.default(qwen ? 32768 : 2048),
      rms_norm_eps: z.number().positive().default(1e-6),
      initializer_range: z.number().positive().default(0.02),
      rope_theta: z.number().positive().optional(),
      rope_scaling: ropeDict,
      rope_parameters: ropeDict,
      attention_bias: z.boolean().default(false),
      attention_dropout: prob.default(0),
      mlp_bias: z.boolean().default(false),
      tie_word_embeddings: z.boolean().default(false),
      use_sliding_window: z.boolean().default(false),
      sliding_window: pos.nullable().optional(),
      bos_token_id: tokenId.optional(),
      eos_token_id: z
        .union([z.int(), z.array(z.int())])
        .nullable()
        .optional(),
      pad_token_id: tokenId.optional(),
    })
    .superRefine((c, ctx) => {
      const heads = c.num_attention_heads;
      const kv = c.num_key_value_heads ?? heads;
      if (heads % kv !== 0)
        ctx.addIssue({
          code: 'custom',
          path: ['num_key_value_heads'],
          message: `${kv} does not divide num_attention_heads ${heads}`,
        });
      if (!c.head_dim && c.hidden_size % heads !== 0)
        ctx.addIssue({
          code: 'custom',
          path: ['num_attention_heads'],
          message: `${heads} does not divide hidden_size ${c.hidden_size} (set head_dim)`,
        });
      if (c.use_sliding_window)
        ctx.addIssue({
          code: 'custom',
          path: ['use_sliding_window'],
          message: 'sliding-window attention is not supported',
        });
    });
}

function visionGeometryIssues(
  c: { image_size: number; patch_size: number; hidden_size: number; num_attention_heads: number },
  ctx: z.RefinementCtx,
): void {
  if (c.image_size % c.patch_size !== 0)
    ctx.addIssue({
      code: 'custom',
      path: ['patch_size'],
      message: `${c.patch_size} does not divide image_size ${c.image_size}`,
    });
  if (c.hidden_size % c.num_attention_heads !== 0)
    ctx.addIssue({
      code: 'custom',
      path: ['num_attention_heads'],
      message: `${c.num_attention_heads} does not divide hidden_size ${c.hidden_size}`,
    });
}

function vitSchema(required: boolean) {
  return z
    .looseObject({
      ...common,
      model_type: z.literal('vit'),
      hidden_size: sized(pos, required, 768),
      num_hidden_layers: sized(pos, required, 12),
      num_attention_heads: sized(pos, required, 12),
      intermediate_size: sized(pos, required, 3072),
      hidden_act: z.string().default('gelu'),
      hidden_dropout_prob: prob.default(0),
      attention_probs_dropout_prob: prob.default(0),
      initializer_range: z.number().positive().default(0.02),
      layer_norm_eps: z.number().positive().default(1e-12),
      image_size: sized(pos, required, 224),
      patch_size: sized(pos, required, 16),
      num_channels: pos.default(3),
      qkv_bias: z.boolean().default(true),
    })
    .superRefine(visionGeometryIssues);
}

/** CLIPVisionConfig's defaults; `llava` uses its own when vision_config is absent altogether. */
function clipVisionSchema(required: boolean) {
  return z
    .looseObject({
      ...common,
      model_type: z.literal('clip_vision_model'),
      hidden_size: sized(pos, required, 768),
      intermediate_size: sized(pos, required, 3072),
      projection_dim: pos.default(512),
      num_hidden_layers: sized(pos, required, 12),
      num_attention_heads: sized(pos, required, 12),
      num_channels: pos.default(3),
      image_size: sized(pos, required, 224),
      patch_size: sized(pos, required, 32),
      hidden_act: z.string().default('quick_gelu'),
      layer_norm_eps: z.number().positive().default(1e-5),
      attention_dropout: prob.default(0),
      initializer_range: z.number().positive().default(0.02),
    })
    .superRefine(visionGeometryIssues);
}

const LLAVA_DEFAULT_VISION = {
  model_type: 'clip_vision_model',
  intermediate_size: 4096,
  hidden_size: 1024,
  patch_size: 14,
  image_size: 336,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  projection_dim: 768,
};

const llavaSchema = z.looseObject({
  ...common,
  model_type: z.literal('llava'),
  text_config: z.unknown().optional(),
  vision_config: z.unknown().optional(),
  image_token_id: z.int().min(0).optional(),
  image_token_index: z.int().min(0).optional(),
  projector_hidden_act: z.string().default('gelu'),
  vision_feature_select_strategy: z.enum(['default', 'full']).default('default'),
  vision_feature_layer: z.union([z.int(), z.array(z.int()).min(1)]).default(-2),
  image_seq_length: pos.optional(),
  multimodal_projector_bias: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
  mm_projector_type: z.enum(PROJECTOR_TYPES).default('mlp2x_gelu'),
});

const clipSchema = z.looseObject({
  ...common,
  model_type: z.literal('clip'),
  vision_config: z.unknown().optional(),
});

/** Formats zod issues as "file: key.path: message", the first issue on the error's first line. */
export function configIssuesError(file: string, prefix: string, error: z.ZodError): TlabError {
  const lines = error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    const message = /received undefined$/.test(issue.message) ? 'missing (required)' : issue.message;
    return `${file}: ${path || '(top level)'}: ${message}`;
  });
  return new TlabError(lines[0], lines.slice(1).join('\n') || undefined);
}

function parseWith<T>(schema: z.ZodType<T>, json: unknown, file: string, prefix: string, strict = false): T {
  if (strict && isJsonObject(json)) {
    // A hand-written config (a YAML `model.config`): a key this tool does not read is a typo or a setting that
    // would be ignored. Folders' config.json stay loose: Hugging Face writes many keys this tool has no use for.
    const known = Object.keys((schema as unknown as { shape?: Record<string, unknown> }).shape ?? {});
    const unknown = Object.keys(json).filter((k) => !known.includes(k));
    if (known.length && unknown.length)
      throw new TlabError(
        `${file}: ${prefix || '(top level)'}: unknown field '${unknown[0]}'${didYouMean(unknown[0], known)}`,
        `valid fields of a ${String(json.model_type)} config: ${known.join(', ')}`,
      );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw configIssuesError(file, prefix, parsed.error);
  return parsed.data;
}

function modelTypeOf(json: JsonObject, file: string, prefix: string, fallback?: string): string {
  const key = prefix ? `${prefix}.model_type` : 'model_type';
  const type = json.model_type ?? fallback;
  if (type === undefined) throw new TlabError(`${file}: ${key}: missing; valid: ${MODEL_TYPES.join(', ')}`);
  if (typeof type !== 'string')
    throw new TlabError(`${file}: ${key}: expected a string, found ${describeJson(type)}`);
  if (type in NOT_SUPPORTED)
    throw new TlabError(`${file}: ${key}: '${type}' is not supported: ${NOT_SUPPORTED[type]}`);
  if (!(MODEL_TYPES as readonly string[]).includes(type))
    throw new TlabError(`${file}: ${key}: unknown model type '${type}'; valid: ${MODEL_TYPES.join(', ')}`);
  return type;
}

function parseOne(
  json: JsonObject,
  file: string,
  prefix: string,
  required: boolean,
  fallbackType?: string,
  strict = false,
): HfConfig {
  const type = modelTypeOf(json, file, prefix, fallbackType);
  const body = json.model_type === undefined ? { ...json, model_type: type } : json;
  switch (type) {
    case 'gpt2':
      return parseWith(gpt2Schema(required), body, file, prefix, strict) as HfConfig;
    case 'llama':
    case 'qwen2':
      return parseWith(llamaSchema(type, required), body, file, prefix, strict) as HfConfig;
    case 'vit':
      return parseWith(vitSchema(required), body, file, prefix, strict) as HfConfig;
    case 'clip_vision_model':
      return parseWith(clipVisionSchema(required), body, file, prefix, strict) as HfConfig;
    case 'qwen2_vl':
      return parseQwen2VlConfig(body, file, prefix, {
        parse: (schema, value, key) => parseWith(schema, value, file, key, strict),
        text: (value, key) => parseOne(value, file, key, true, 'qwen2', strict) as LlamaConfig,
      }) as HfConfig;
    case 'clip': {
      const c = parseWith(clipSchema, body, file, prefix, strict);
      const vision = subConfig(
        c.vision_config,
        file,
        join(prefix, 'vision_config'),
        ['clip_vision_model'],
        { model_type: 'clip_vision_model' },
        strict,
      );
      return { ...c, vision_config: vision } as HfConfig;
    }
    default: {
      const c = parseWith(llavaSchema, body, file, prefix, strict);
      const text = subConfig(
        c.text_config,
        file,
        join(prefix, 'text_config'),
        ['gpt2', 'llama', 'qwen2'],
        { model_type: 'llama' },
        strict,
      );
      const vision = subConfig(
        c.vision_config,
        file,
        join(prefix, 'vision_config'),
        ['clip_vision_model', 'vit'],
        LLAVA_DEFAULT_VISION,
        strict,
      );
      return { ...c, text_config: text, vision_config: vision } as HfConfig;
    }
  }
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

/** A nested config (dict, or absent → `absent`), parsed with HF class defaults for missing fields. */
function subConfig(
  value: unknown,
  file: string,
  key: string,
  allowed: readonly string[],
  absent: JsonObject,
  strict = false,
): HfConfig {
  if (value !== undefined && value !== null && !isJsonObject(value))
    throw new TlabError(`${file}: ${key}: expected an object, found ${describeJson(value)}`);
  const json = (value ?? absent) as JsonObject;
  const parsed = parseOne(json, file, key, false, absent.model_type as string, strict);
  if (!allowed.includes(parsed.model_type))
    throw new TlabError(
      `${file}: ${key}.model_type: '${parsed.model_type}' cannot be used here; valid: ${allowed.join(', ')}`,
    );
  return parsed;
}

export interface ParseHfConfigOptions {
  /** Key path of the config inside `file` for errors (e.g. `model.config` of a training YAML). */
  prefix?: string;
  /** Reject keys this tool does not read, with did-you-mean (hand-written configs; not config.json files). */
  strict?: boolean;
}

/** Parses a config.json document; `file` names it in errors. */
export function parseHfConfig(
  json: unknown,
  file = 'config.json',
  options: ParseHfConfigOptions = {},
): HfConfig {
  if (!isJsonObject(json))
    throw new TlabError(
      `${file}: ${options.prefix ? `${options.prefix}: ` : ''}expected a JSON object, found ${describeJson(json)}`,
    );
  return parseOne(json, file, options.prefix ?? '', true, undefined, options.strict ?? false);
}

/** Number of labels of a classification config: id2label's size, else num_labels, else HF's default 2. */
export function numLabelsOf(config: CommonConfigFields): number {
  if (config.id2label) return Object.keys(config.id2label).length;
  return config.num_labels ?? 2;
}
