/** Tiny random decoder folders (GPT-2, Llama, Qwen2) with a character tokenizer, saved as Hugging Face folders, for the export tests. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpt2Config } from '../../src/models/gpt2.ts';
import { gpt2Model } from '../../src/models/gpt2.ts';
import { loadModelFolder, type ModelFolder, saveModelFolder } from '../../src/models/hf/model-folder.ts';
import { buildModel } from '../../src/models/hf/registry.ts';
import { type LlamaConfig, llamaModel } from '../../src/models/llama.ts';
import { randomWeights, tokenizer } from '../eval/helpers.ts';

export { tokenizer };

export type TinyArch = 'gpt2' | 'llama' | 'qwen2';

export function tinyConfig(arch: TinyArch): Gpt2Config | LlamaConfig {
  const eos = tokenizer.eosId ?? null;
  if (arch === 'gpt2')
    return {
      model_type: 'gpt2',
      vocab_size: tokenizer.vocabSize,
      n_positions: 48,
      n_embd: 32,
      n_layer: 2,
      n_head: 4,
      eos_token_id: eos,
      bos_token_id: eos,
    };
  return {
    model_type: arch,
    vocab_size: tokenizer.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: arch === 'llama' ? 1 : 2,
    max_position_embeddings: 48,
    rope_theta: arch === 'llama' ? 10000 : 1000000,
    rms_norm_eps: 1e-6,
    hidden_act: 'silu',
    tie_word_embeddings: arch === 'qwen2',
    eos_token_id: eos,
    bos_token_id: eos,
  };
}

/** Saves a tiny random `arch` model with the character tokenizer into `dir` and loads it back. */
export function tinyFolder(dir: string, arch: TinyArch, seed = 3): ModelFolder {
  const config = tinyConfig(arch);
  const model = config.model_type === 'gpt2' ? gpt2Model(config) : llamaModel(config);
  mkdirSync(dir, { recursive: true });
  const loaded = buildModel(config, 'causal-lm');
  saveModelFolder(dir, { ...loaded, config }, randomWeights(model, seed));
  tokenizer.save(dir);
  return loadModelFolder(dir);
}

export const FIXTURE_ROOT = 'test/fixtures/models';
export const fixture = (name: string) => join(FIXTURE_ROOT, name);
