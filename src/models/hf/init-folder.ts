/**
 * Random-initialised Hugging Face model folders of any supported architecture (`tlab model init`): a config.json
 * (given, or an architecture preset such as Qwen2-VL-2B's), weights drawn as each parameter declares (normal 0.02
 * for projections and embeddings, ones for norms, zeros for biases; seeded per tensor, so the same seed gives the
 * same folder), a tokenizer whose special tokens sit at the ids the config names, a chat template, the image
 * processor a VLM needs, and generation_config.json. So a model of a real model's shape can be built, trained,
 * served and measured without its weights.
 *
 * The tokenizer is character-level (printable ASCII and newline) with the architecture's special tokens at their
 * config ids (`<|image_pad|>` at image_token_id, ...): not the real model's vocabulary, which cannot be recreated
 * without its files, but one whose ids fit the embedding table and whose specials mean what the model expects.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HostTensor, toHalf } from '../../engine/tensor.ts';
import { initTensor } from '../../nn/module.ts';
import { writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import type { JsonObject } from '../../util/json-file.ts';
import { type HfConfig, parseHfConfig } from './configs.ts';
import { saveModelFolder } from './model-folder.ts';
import { buildModel, defaultKind, kindFromArchitectures, parameterSpecs } from './registry.ts';

export interface ModelPreset {
  description: string;
  config: JsonObject;
}

const QWEN2_VL_TOKENS = {
  bos_token_id: 151643,
  eos_token_id: 151645,
  vision_start_token_id: 151652,
  vision_end_token_id: 151653,
  vision_token_id: 151654,
  image_token_id: 151655,
  video_token_id: 151656,
};

/** Architecture presets: config.json values of released models (sizes only; weights are random). */
export const MODEL_PRESETS: Record<string, ModelPreset> = {
  'qwen2-vl-2b': {
    description: "Qwen/Qwen2-VL-2B-Instruct's shapes (1.5B Qwen2 text model, 675M vision tower)",
    config: {
      architectures: ['Qwen2VLForConditionalGeneration'],
      model_type: 'qwen2_vl',
      attention_dropout: 0.0,
      ...QWEN2_VL_TOKENS,
      hidden_act: 'silu',
      hidden_size: 1536,
      initializer_range: 0.02,
      intermediate_size: 8960,
      max_position_embeddings: 32768,
      max_window_layers: 28,
      num_attention_heads: 12,
      num_hidden_layers: 28,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      sliding_window: 32768,
      tie_word_embeddings: true,
      use_cache: true,
      use_sliding_window: false,
      vision_config: {
        depth: 32,
        embed_dim: 1280,
        mlp_ratio: 4,
        num_heads: 16,
        in_chans: 3,
        hidden_size: 1536,
        patch_size: 14,
        spatial_merge_size: 2,
        spatial_patch_size: 14,
        temporal_patch_size: 2,
      },
      rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
      vocab_size: 151936,
    },
  },
  'qwen2-vl-tiny': {
    description:
      'a tiny Qwen2-VL (2+2 layers, width 64) for tests and demos; 56x56 images give 4 image tokens',
    config: {
      architectures: ['Qwen2VLForConditionalGeneration'],
      model_type: 'qwen2_vl',
      bos_token_id: 500,
      eos_token_id: 502,
      vision_start_token_id: 503,
      vision_end_token_id: 504,
      vision_token_id: 505,
      image_token_id: 506,
      video_token_id: 507,
      hidden_size: 64,
      intermediate_size: 128,
      max_position_embeddings: 512,
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 10000.0,
      tie_word_embeddings: true,
      rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] },
      vision_config: {
        depth: 2,
        embed_dim: 32,
        mlp_ratio: 2,
        num_heads: 4,
        in_chans: 3,
        hidden_size: 64,
        patch_size: 14,
        spatial_merge_size: 2,
        temporal_patch_size: 2,
        image_size: 56,
      },
      vocab_size: 512,
    },
  },
  gpt2: {
    description: 'GPT-2 small (124M)',
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: 50257,
      n_positions: 1024,
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      bos_token_id: 50256,
      eos_token_id: 50256,
    },
  },
  'gpt2-tiny': {
    description: 'a 2-layer GPT-2 of width 64 for tests and demos',
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: 256,
      n_positions: 256,
      n_embd: 64,
      n_layer: 2,
      n_head: 4,
      bos_token_id: 255,
      eos_token_id: 255,
    },
  },
};

const CHARACTERS = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\n'];

const CHATML =
  "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
const PLAIN_CHAT =
  "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";

interface TokenizerPlan {
  /** Special token → fixed id (null: the next free id after the characters). */
  specials: [string, number | null][];
  bos?: string;
  eos?: string;
  pad?: string;
  /** Extra stop tokens for generation_config.json (chat end-of-turn). */
  stops: string[];
  chatTemplate: string;
  imageToken?: string;
}

function id(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v)
    ? v
    : Array.isArray(v) && Number.isInteger(v[0])
      ? v[0]
      : null;
}

function tokenizerPlan(config: HfConfig & JsonObject): TokenizerPlan | null {
  switch (config.model_type) {
    case 'gpt2':
      return {
        specials: [['<|endoftext|>', id(config.eos_token_id)]],
        bos: '<|endoftext|>',
        eos: '<|endoftext|>',
        stops: [],
        chatTemplate: PLAIN_CHAT,
      };
    case 'llama':
      return {
        specials: [
          ['<unk>', null],
          ['<s>', id(config.bos_token_id)],
          ['</s>', id(config.eos_token_id)],
        ],
        bos: '<s>',
        eos: '</s>',
        stops: [],
        chatTemplate: PLAIN_CHAT,
      };
    case 'qwen2':
      return {
        specials: [
          ['<|endoftext|>', id(config.bos_token_id) ?? id(config.eos_token_id)],
          ['<|im_start|>', null],
          ['<|im_end|>', null],
        ],
        eos: '<|endoftext|>',
        pad: '<|endoftext|>',
        stops: ['<|im_end|>'],
        chatTemplate: CHATML,
      };
    case 'qwen2_vl': {
      const c = config as JsonObject;
      const text = (c.text_config ?? {}) as JsonObject;
      const endOfText = id(text.bos_token_id ?? c.bos_token_id);
      const imEnd = id(text.eos_token_id ?? c.eos_token_id);
      return {
        specials: [
          ['<|endoftext|>', endOfText],
          [
            '<|im_start|>',
            imEnd !== null && endOfText !== null && imEnd === endOfText + 2 ? endOfText + 1 : null,
          ],
          ['<|im_end|>', imEnd],
          ['<|vision_start|>', id(c.vision_start_token_id)],
          ['<|vision_end|>', id(c.vision_end_token_id)],
          ['<|vision_pad|>', id(c.vision_token_id)],
          ['<|image_pad|>', id(c.image_token_id) ?? 151655],
          ['<|video_pad|>', id(c.video_token_id)],
        ],
        eos: '<|im_end|>',
        pad: '<|endoftext|>',
        stops: ['<|endoftext|>'],
        chatTemplate: CHATML,
        imageToken: '<|image_pad|>',
      };
    }
    case 'llava': {
      const inner = tokenizerPlan(config.text_config as HfConfig & JsonObject)!;
      const image =
        (config as JsonObject).image_token_index ?? (config as JsonObject).image_token_id ?? 32000;
      return { ...inner, specials: [...inner.specials, ['<image>', id(image)]], imageToken: '<image>' };
    }
    default:
      return null;
  }
}

/** tokenizer.json + tokenizer_config.json of a character tokenizer with the plan's special tokens at their ids. */
function buildTokenizer(
  plan: TokenizerPlan,
  vocabSize: number,
  where: string,
): { tokenizer: JsonObject; config: JsonObject; ids: Map<string, number> } {
  const ids = new Map<string, number>();
  const taken = new Set<number>();
  for (const [token, at] of plan.specials) {
    if (at === null || ids.has(token)) continue;
    if (at < 0 || at >= vocabSize)
      throw new TlabError(`${where}: ${token} id ${at} is outside the vocabulary (vocab_size ${vocabSize})`);
    if (taken.has(at)) continue; // two names for one id (bos = eos): the first keeps it
    ids.set(token, at);
    taken.add(at);
  }
  let next = 0;
  const free = (): number => {
    while (taken.has(next)) next++;
    taken.add(next);
    return next;
  };
  const vocab: Record<string, number> = {};
  for (const c of CHARACTERS) vocab[c] = free();
  for (const [token] of plan.specials) if (!ids.has(token)) ids.set(token, free());
  if (!ids.has('<unk>')) ids.set('<unk>', free());
  const largest = Math.max(...Object.values(vocab), ...ids.values());
  if (largest >= vocabSize)
    throw new TlabError(
      `${where}: vocab_size ${vocabSize} is too small for the tokenizer's ${CHARACTERS.length} characters and ${ids.size} special tokens`,
    );
  for (const [token, at] of ids) vocab[token] = at;
  const added = [...ids].map(([content, at]) => ({
    id: at,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.sort((a, b) => a.id - b.id),
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
  const config: JsonObject = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    clean_up_tokenization_spaces: false,
    unk_token: '<unk>',
    chat_template: plan.chatTemplate,
    model_max_length: 1e30,
  };
  if (plan.bos) config.bos_token = plan.bos;
  if (plan.eos) config.eos_token = plan.eos;
  if (plan.pad) config.pad_token = plan.pad;
  if (plan.imageToken) config.image_token = plan.imageToken;
  return { tokenizer, config, ids };
}

/** preprocessor_config.json for an image model: Qwen2-VL's dynamic-resolution processor, or a fixed-size one. */
function processorFor(config: HfConfig & JsonObject): JsonObject | null {
  const clip = {
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
  };
  if (config.model_type === 'qwen2_vl') {
    const v = config.vision_config;
    return {
      image_processor_type: 'Qwen2VLImageProcessor',
      processor_class: 'Qwen2VLProcessor',
      min_pixels: 56 * 56,
      max_pixels: 28 * 28 * 1280,
      patch_size: v.patch_size ?? 14,
      temporal_patch_size: v.temporal_patch_size ?? 2,
      merge_size: v.spatial_merge_size ?? 2,
      do_rescale: true,
      rescale_factor: 1 / 255,
      do_normalize: true,
      ...clip,
    };
  }
  const vision =
    config.model_type === 'llava' || config.model_type === 'clip'
      ? (config.vision_config as { image_size: number })
      : config.model_type === 'vit' || config.model_type === 'clip_vision_model'
        ? (config as { image_size: number })
        : null;
  if (!vision) return null;
  return {
    image_processor_type: 'CLIPImageProcessor',
    do_resize: true,
    size: { height: vision.image_size, width: vision.image_size },
    resample: 3,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    ...clip,
  };
}

export interface InitModelOptions {
  seed?: number;
  /** Dtype of the written weights; default float32. */
  dtype?: 'float32' | 'float16' | 'bfloat16';
  /** Names the config's origin in errors (a file path, or `preset <name>`). */
  source?: string;
}

export interface InitModelResult {
  dir: string;
  modelType: string;
  kind: string;
  parameters: number;
  files: string[];
}

/** The config of a preset name, with a TlabError listing the presets for an unknown one. */
export function presetConfig(name: string): JsonObject {
  const p = MODEL_PRESETS[name];
  if (!p) throw new TlabError(`unknown preset '${name}'; valid: ${validChoices(Object.keys(MODEL_PRESETS))}`);
  return structuredClone(p.config);
}

/** Writes a random-initialised model folder for `configJson` (a config.json document) into `dir`. */
export function initModelFolder(
  configJson: JsonObject,
  dir: string,
  options: InitModelOptions = {},
): InitModelResult {
  const where = options.source ?? 'config.json';
  const config = parseHfConfig(configJson, where) as HfConfig & JsonObject;
  const kind =
    kindFromArchitectures(config) ?? defaultKind(config.model_type as Parameters<typeof defaultKind>[0]);
  const loaded = { ...buildModel(config, kind), config };
  const specs = parameterSpecs(loaded);
  const dtype = options.dtype ?? 'float32';
  // One tensor at a time, converted to the written dtype at once: a 2B model in bfloat16 never holds float32.
  const weights = new Map<string, HostTensor>();
  let parameters = 0;
  for (const spec of specs.values()) {
    const t = initTensor(spec, options.seed ?? 0);
    weights.set(spec.name, dtype === 'float32' ? t : toHalf(t, dtype));
    parameters += t.data.length;
  }
  const aux = mkdtempSync(join(tmpdir(), 'tlab-init-'));
  try {
    const vocabSize = 'vocabSize' in loaded.model ? (loaded.model as { vocabSize: number }).vocabSize : 0;
    const plan = tokenizerPlan(config);
    if (plan) {
      const t = buildTokenizer(plan, vocabSize, where);
      writeJsonAtomic(join(aux, 'tokenizer.json'), t.tokenizer);
      writeJsonAtomic(join(aux, 'tokenizer_config.json'), t.config);
      const eos = plan.eos ? t.ids.get(plan.eos) : undefined;
      const stops = [eos, ...plan.stops.map((s) => t.ids.get(s))].filter((v): v is number => v !== undefined);
      writeJsonAtomic(join(aux, 'generation_config.json'), {
        ...(plan.bos ? { bos_token_id: t.ids.get(plan.bos) } : {}),
        eos_token_id: stops.length === 1 ? stops[0] : [...new Set(stops)],
        ...(plan.pad ? { pad_token_id: t.ids.get(plan.pad) } : {}),
      });
    }
    const processor = processorFor(config);
    if (processor) writeJsonAtomic(join(aux, 'preprocessor_config.json'), processor);
    const files = saveModelFolder(dir, loaded, weights, { dtype, filesFrom: aux });
    return { dir, modelType: config.model_type, kind, parameters, files };
  } finally {
    rmSync(aux, { recursive: true, force: true });
  }
}
