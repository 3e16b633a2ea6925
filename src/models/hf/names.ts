/**
 * Parameter names ↔ checkpoint keys. Internally every model uses the names of its canonical Hugging Face
 * checkpoint (GPT-2: `h.0.attn.c_attn.weight`; Llama: `model.layers.0...`, `lm_head.weight`; ViT: `vit.*`; CLIP:
 * `vision_model.*`; LLaVA: `vision_tower.*`, `multi_modal_projector.*`, `language_model.*`). Files vary by
 * prefix (`transformer.`, `model.`, transformers ≥ 4.52's `model.language_model.`...), so loading tries every
 * prefix rewrite and keeps the candidate the model declares; saving writes the keys that
 * `AutoModelFor*.from_pretrained` expects.
 */
import type { ModelKind } from '../types.ts';
import type { HfConfig } from './configs.ts';

export interface NameRules {
  /** [internalPrefix, filePrefix] used when saving; the first matching rule wins. */
  readonly save: readonly (readonly [string, string])[];
  /** [filePrefix, internalPrefix] tried when loading; every matching rule yields a candidate. */
  readonly load: readonly (readonly [string, string])[];
  /** Checkpoint keys that are known and are not parameters (buffers, other halves of a bigger model). */
  readonly ignore: readonly RegExp[];
}

const GPT2_BUFFERS = /(^|\.)attn\.(bias|masked_bias)$/;
const ROTARY_BUFFER = /rotary_emb\.inv_freq$/;
const LM_HEAD = /(^|\.)lm_head\.weight$/;
const CLIP_EXTRAS = [
  /(^|\.)embeddings\.position_ids$/,
  /^text_model\./,
  /^(visual|text)_projection\./,
  /^logit_scale$/,
];
const VIT_POOLER = /(^|\.)pooler\.dense\.(weight|bias)$/;

function textTied(config: HfConfig): boolean {
  if (config.model_type === 'gpt2') return config.tie_word_embeddings !== false;
  if (config.model_type === 'llama' || config.model_type === 'qwen2')
    return config.tie_word_embeddings === true;
  if (config.model_type === 'llava')
    return config.tie_word_embeddings === true || textTied(config.text_config as HfConfig);
  if (config.model_type === 'qwen2_vl')
    return config.tie_word_embeddings === true || config.text_config.tie_word_embeddings === true;
  return false;
}

export function nameRules(kind: ModelKind, config: HfConfig): NameRules {
  const tied = textTied(config) && kind !== 'sequence-classifier' ? [LM_HEAD] : [];
  switch (config.model_type) {
    case 'gpt2':
      return {
        save: [
          ['lm_head.', 'lm_head.'],
          ['score.', 'score.'],
          ['', 'transformer.'],
        ],
        load: [
          ['transformer.', ''],
          ['', ''],
        ],
        ignore: [GPT2_BUFFERS, ...tied],
      };
    case 'llama':
    case 'qwen2':
      return {
        save: [['', '']],
        load: [
          ['', ''],
          ['', 'model.'],
        ],
        ignore: [ROTARY_BUFFER, ...tied],
      };
    case 'vit':
      return {
        save: kind === 'vision-encoder' ? [['vit.', '']] : [['', '']],
        load: [
          ['', ''],
          ['', 'vit.'],
        ],
        ignore: [VIT_POOLER],
      };
    case 'clip_vision_model':
    case 'clip':
      return {
        save: [['', '']],
        load: [
          ['', ''],
          ['', 'vision_model.'],
        ],
        ignore: CLIP_EXTRAS,
      };
    case 'llava':
      return {
        // The layout transformers ≥ 4.52 writes (it maps its in-memory names back to these) and every version reads.
        save: [
          ['vision_tower.vit.', 'vision_tower.'],
          ['language_model.model.', 'language_model.model.'],
          ['language_model.lm_head.', 'language_model.lm_head.'],
          ['language_model.', 'language_model.model.'],
          ['', ''],
        ],
        load: [
          ['model.vision_tower.', 'vision_tower.'],
          ['model.vision_tower.', 'vision_tower.vit.'],
          ['vision_tower.', 'vision_tower.'],
          ['vision_tower.', 'vision_tower.vit.'],
          ['model.multi_modal_projector.', 'multi_modal_projector.'],
          ['multi_modal_projector.', 'multi_modal_projector.'],
          ['model.language_model.', 'language_model.model.'],
          ['model.language_model.', 'language_model.'],
          ['language_model.model.', 'language_model.model.'],
          ['language_model.model.', 'language_model.'],
          ['language_model.transformer.', 'language_model.'],
          ['language_model.', 'language_model.'],
          ['lm_head.', 'language_model.lm_head.'],
        ],
        ignore: [GPT2_BUFFERS, ROTARY_BUFFER, VIT_POOLER, ...CLIP_EXTRAS.slice(0, 1), ...tied],
      };
    case 'qwen2_vl':
      return {
        // The hub checkpoints' layout (visual.*, model.*, lm_head), which transformers ≥ 4.52 also writes back.
        save: [['', '']],
        load: [
          ['model.visual.', 'visual.'],
          ['model.language_model.', 'model.'],
          ['visual.', 'visual.'],
          ['model.', 'model.'],
          ['lm_head.', 'lm_head.'],
        ],
        ignore: [ROTARY_BUFFER, ...tied],
      };
  }
}

/** The checkpoint key a parameter is saved under. */
export function fileKeyOf(rules: NameRules, internal: string): string {
  for (const [from, to] of rules.save) if (internal.startsWith(from)) return to + internal.slice(from.length);
  return internal;
}

/** Internal names a checkpoint key may stand for, most specific rewrite first. */
export function internalCandidates(rules: NameRules, key: string): string[] {
  const out: string[] = [];
  for (const [from, to] of rules.load) {
    if (!key.startsWith(from)) continue;
    const name = to + key.slice(from.length);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

export function isIgnored(rules: NameRules, key: string): boolean {
  return rules.ignore.some((r) => r.test(key));
}

/**
 * Up to `n` names closest to `target`: names of the same module first (a missing `ln_f.bias` suggests
 * `ln_f.weight`), then by edit distance.
 */
export function closestNames(target: string, names: Iterable<string>, n = 3): string[] {
  const moduleOf = (s: string) => s.slice(0, s.lastIndexOf('.') + 1);
  const module = moduleOf(target);
  const scored = [...names].map((name) => {
    const sameModule =
      module !== '' &&
      (moduleOf(name) === module ||
        moduleOf(name).endsWith(`.${module}`) ||
        module.endsWith(`.${moduleOf(name)}`));
    return [sameModule ? 0 : 1, editDistance(target, name), name] as const;
  });
  scored.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2].localeCompare(b[2]));
  return scored.slice(0, n).map(([, , name]) => name);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
