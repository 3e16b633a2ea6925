/**
 * config.json of Qwen2-VL (`model_type: qwen2_vl`, Qwen2VLConfig): the text fields either in `text_config`
 * (transformers ≥ 4.52, model_type qwen2_vl_text; missing keys take Qwen2VLTextConfig's defaults, which its
 * diff-saving drops) or at the top level (the released checkpoints' older files, where every size field must be
 * present); `vision_config` with Qwen2VLVisionConfig's defaults; the vision token ids at the top level.
 */
import { z } from 'zod';
import { TlabError } from '../../util/errors.ts';
import { describeJson, isJsonObject, type JsonObject } from '../../util/json-file.ts';
import type { LlamaConfig } from '../llama.ts';
import type { Qwen2VlConfig } from '../qwen2-vl.ts';

/** Qwen2VLTextConfig's class defaults (transformers configuration_qwen2_vl.py). */
export const QWEN2_VL_TEXT_DEFAULTS: JsonObject = {
  vocab_size: 152064,
  hidden_size: 8192,
  intermediate_size: 29568,
  num_hidden_layers: 80,
  num_attention_heads: 64,
  num_key_value_heads: 8,
  hidden_act: 'silu',
  max_position_embeddings: 32768,
  initializer_range: 0.02,
  rms_norm_eps: 1e-5,
  rope_theta: 1e6,
  use_sliding_window: false,
  attention_dropout: 0,
};

/** Keys of a qwen2_vl config that are not text-model fields (so the top-level text parse ignores them). */
const VL_KEYS = [
  'text_config',
  'vision_config',
  'image_token_id',
  'video_token_id',
  'vision_start_token_id',
  'vision_end_token_id',
  'vision_token_id',
];

const pos = z.int().min(1);
const tokenId = z.int().min(0).optional();

const visionSchema = z.looseObject({
  model_type: z.string().optional(),
  depth: pos.default(32),
  embed_dim: pos.default(1280),
  hidden_size: pos.default(3584),
  hidden_act: z.string().default('quick_gelu'),
  mlp_ratio: z.number().positive().default(4),
  num_heads: pos.default(16),
  in_channels: pos.default(3),
  patch_size: pos.default(14),
  spatial_merge_size: pos.default(2),
  temporal_patch_size: pos.default(2),
  initializer_range: z.number().positive().default(0.02),
  image_size: pos.optional(),
});

const topSchema = z.looseObject({
  model_type: z.literal('qwen2_vl'),
  image_token_id: tokenId,
  video_token_id: tokenId,
  vision_start_token_id: tokenId,
  vision_end_token_id: tokenId,
  tie_word_embeddings: z.boolean().optional(),
});

export interface Qwen2VlParsers {
  /** Parses a zod schema with the file's error formatting (`key` is the field path). */
  parse<T>(schema: z.ZodType<T>, value: unknown, key: string): T;
  /** Parses a Qwen2 text config (sizes required) at `key`. */
  text(value: JsonObject, key: string): LlamaConfig;
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

/** A parsed and normalised qwen2_vl config (unknown keys kept, so it saves back whole). */
export function parseQwen2VlConfig(
  json: JsonObject,
  file: string,
  prefix: string,
  parsers: Qwen2VlParsers,
): Qwen2VlConfig & JsonObject {
  const top = parsers.parse(topSchema, json, prefix);
  let textJson: JsonObject;
  let textKey: string;
  const nested = json.text_config;
  if (nested !== undefined && nested !== null) {
    if (!isJsonObject(nested))
      throw new TlabError(
        `${file}: ${join(prefix, 'text_config')}: expected an object, found ${describeJson(nested)}`,
      );
    textKey = join(prefix, 'text_config');
    textJson = {
      ...QWEN2_VL_TEXT_DEFAULTS,
      ...(json.tie_word_embeddings !== undefined ? { tie_word_embeddings: json.tie_word_embeddings } : {}),
      ...nested,
    };
  } else {
    textKey = prefix;
    textJson = Object.fromEntries(Object.entries(json).filter(([k]) => !VL_KEYS.includes(k)));
    // The folder-level keys stay at the top level only.
    for (const k of ['architectures', 'torch_dtype', 'dtype', 'transformers_version']) delete textJson[k];
  }
  const text = parsers.text({ ...textJson, model_type: 'qwen2' }, textKey);
  const visionValue = json.vision_config ?? {};
  if (!isJsonObject(visionValue))
    throw new TlabError(
      `${file}: ${join(prefix, 'vision_config')}: expected an object, found ${describeJson(visionValue)}`,
    );
  // Older files spell in_channels as in_chans.
  const visionJson =
    visionValue.in_channels === undefined && visionValue.in_chans !== undefined
      ? { ...visionValue, in_channels: visionValue.in_chans }
      : visionValue;
  const vision = parsers.parse(visionSchema, visionJson, join(prefix, 'vision_config'));
  return {
    ...json,
    ...top,
    text_config: { ...text, model_type: 'qwen2_vl_text' },
    vision_config: vision,
  } as Qwen2VlConfig & JsonObject;
}
