/**
 * STOPGAP, to be replaced by `loadModelFolder` from src/models/hf when it lands: loads a Hugging Face GPT-2
 * folder (config.json, model.safetensors or a sharded model.safetensors.index.json, tokenizer.json) for
 * generation. Checkpoint names with the GPT2LMHeadModel "transformer." prefix are accepted; the causal-mask
 * buffers (attn.bias, attn.masked_bias) and a tied lm_head.weight are dropped.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readSafetensors } from '../engine/io/safetensors.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { type Gpt2Config, gpt2Model } from '../models/gpt2.ts';
import type { DecoderLm } from '../models/types.ts';
import { type HfTextTokenizer, loadTokenizer } from '../tokenize/hf-tokenizer.ts';
import { TlabError } from '../util/errors.ts';
import { isJsonObject, readJsonObject } from '../util/json-file.ts';

export interface LoadedCausalLm {
  /** The folder's name, for logs. */
  name: string;
  model: DecoderLm;
  weights: Map<string, HostTensor>;
  tokenizer: HfTextTokenizer;
}

const SUPPORTED = ['gpt2'];

export function loadCausalLmFolder(dir: string): LoadedCausalLm {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new TlabError(
      `${dir}: model folder not found (expected config.json, model.safetensors, tokenizer.json)`,
    );
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new TlabError(`${configPath}: file not found`);
  const config = readJsonObject(configPath);
  if (config.model_type !== 'gpt2')
    throw new TlabError(
      `${configPath}: model_type ${JSON.stringify(config.model_type)} is not supported here; valid: ${SUPPORTED.join(', ')}`,
    );
  for (const key of ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'])
    if (!Number.isInteger(config[key]) || (config[key] as number) <= 0)
      throw new TlabError(
        `${configPath}: ${key}: expected a positive integer, got ${JSON.stringify(config[key])}`,
      );
  const model = gpt2Model(config as unknown as Gpt2Config);
  const tied = config.tie_word_embeddings !== false;
  const weights = new Map<string, HostTensor>();
  for (const [name, tensor] of readWeights(dir)) {
    const key = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
    if (/\.attn\.(masked_)?bias$/.test(key) || (tied && key === 'lm_head.weight')) continue;
    weights.set(key, tensor);
  }
  return { name: basename(dir), model, weights, tokenizer: loadTokenizer(dir) };
}

/** Every tensor of model.safetensors, or of the shards listed by model.safetensors.index.json. */
function readWeights(dir: string): Map<string, HostTensor> {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return readSafetensors(single);
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath))
    throw new TlabError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const map = readJsonObject(indexPath).weight_map;
  if (!isJsonObject(map))
    throw new TlabError(`${indexPath}: weight_map: expected an object of tensor → file`);
  const out = new Map<string, HostTensor>();
  for (const file of new Set(Object.values(map).map(String)))
    for (const [k, v] of readSafetensors(join(dir, file))) out.set(k, v);
  return out;
}
