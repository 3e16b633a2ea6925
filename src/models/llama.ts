/**
 * Llama (Hugging Face LlamaForCausalLM) and Qwen2 (Qwen2ForCausalLM): RMSNorm pre-norm blocks, rotary positions
 * (rotate-half), grouped-query attention, SwiGLU MLP (down(act(gate(x)) · up(x))), optional head_dim override and
 * biases, LM head tied to the token embedding or separate. Qwen2 is Llama with biases on q/k/v (not o_proj),
 * which no config flag signals. Parameter names are the Hugging Face checkpoint's: `model.embed_tokens.weight`,
 * `model.layers.{i}.self_attn.q_proj.weight`, ..., `model.norm.weight`, `lm_head.weight`.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { applyRotary, mergeHeads, scaledDotProductAttention, splitHeads } from '../nn/attention.ts';
import type { KvCache } from '../nn/kv-cache.ts';
import { embedding, linear, rmsNorm } from '../nn/layers.ts';
import type { ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { decoderMask } from './decoder-mask.ts';
import { activation } from './gpt2.ts';
import {
  type RopeConfigFields,
  type RopeSettings,
  ropeForPositions,
  ropeInverseFrequencies,
  ropeSettings,
} from './rope.ts';
import type { DecoderBackboneOutputs, DecoderInputs, DecoderLm, DecoderOutputs } from './types.ts';

export interface LlamaConfig extends RopeConfigFields {
  model_type: 'llama' | 'qwen2';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number | null;
  head_dim?: number | null;
  hidden_act?: string;
  max_position_embeddings: number;
  rms_norm_eps?: number;
  initializer_range?: number;
  attention_bias?: boolean;
  attention_dropout?: number;
  mlp_bias?: boolean;
  tie_word_embeddings?: boolean;
  use_sliding_window?: boolean;
  sliding_window?: number | null;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
}

/** Sizes and flags derived from a config, checked once. */
export interface LlamaDims {
  vocab: number;
  hidden: number;
  inter: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  std: number;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  tied: boolean;
  rope: RopeSettings;
  act: (x: Value) => Value;
}

export function llamaDims(config: LlamaConfig, where = `${config.model_type} config`): LlamaDims {
  const heads = config.num_attention_heads;
  const kvHeads = config.num_key_value_heads ?? heads;
  const headDim = config.head_dim ?? config.hidden_size / heads;
  if (!Number.isInteger(headDim))
    throw new TlabError(
      `${where}: hidden_size ${config.hidden_size} is not divisible by num_attention_heads ${heads} (set head_dim)`,
    );
  if (heads % kvHeads !== 0)
    throw new TlabError(
      `${where}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  if (headDim % 2 !== 0)
    throw new TlabError(`${where}: head_dim ${headDim} must be even for rotary embeddings`);
  if (config.use_sliding_window)
    throw new TlabError(
      `${where}: use_sliding_window: sliding-window attention is not supported; set it to false`,
    );
  const qwen = config.model_type === 'qwen2';
  return {
    vocab: config.vocab_size,
    hidden: config.hidden_size,
    inter: config.intermediate_size,
    layers: config.num_hidden_layers,
    heads,
    kvHeads,
    headDim,
    eps: config.rms_norm_eps ?? 1e-6,
    std: config.initializer_range ?? 0.02,
    qkvBias: qwen || (config.attention_bias ?? false),
    oBias: !qwen && (config.attention_bias ?? false),
    mlpBias: !qwen && (config.mlp_bias ?? false),
    tied: config.tie_word_embeddings ?? false,
    rope: ropeSettings(config, where),
    act: activation(config.hidden_act ?? 'silu', `${where} hidden_act`),
  };
}

/** The transformer body under `model.`: embeddings, blocks, final norm. Returns the embedding table for tying. */
export function llamaBackbone(
  pb: ParamBuilder,
  config: LlamaConfig,
  inputs: DecoderInputs,
): DecoderBackboneOutputs & { embedTable: Value } {
  const dims = llamaDims(config);
  const { ids } = inputs;
  const t = ids.shape[1];
  const cache = inputs.cache ?? null;
  const longest = cache ? cache.shape.maxLength : t;
  if (longest > config.max_position_embeddings && dims.rope.type !== 'dynamic')
    throw new TlabError(
      `${config.model_type}: sequence length ${longest} exceeds max_position_embeddings ${config.max_position_embeddings}`,
    );
  if (
    cache &&
    dims.rope.type === 'dynamic' &&
    longest > (dims.rope.originalMaxPositions ?? config.max_position_embeddings)
  )
    throw new TlabError(
      `${config.model_type}: dynamic RoPE beyond the original context with a KV cache is not supported (Hugging Face recomputes the frequencies at every step)`,
    );
  return pb.scope('model', () => {
    const embed = embedding(pb, 'embed_tokens', ids, dims.vocab, dims.hidden, dims.std);
    let h = inputs.editEmbeds ? inputs.editEmbeds(embed.out) : embed.out;
    const invFreq = ropeInverseFrequencies(dims.rope, dims.headDim, config.max_position_embeddings, longest);
    const { cos, sin } = ropeForPositions(
      ids.graph,
      invFreq,
      h.dtype,
      t,
      cache ? { positions: cache.positions, maxLength: cache.shape.maxLength } : null,
    );
    const mask = decoderMask(ids, inputs.attentionMask, cache);
    const hidden: Value[] = [h];
    for (let i = 0; i < dims.layers; i++) {
      h = pb.scope(`layers.${i}`, () =>
        llamaBlock(pb, dims, config.attention_dropout ?? 0, h, mask, cos, sin, i, cache),
      );
      hidden.push(h);
    }
    const last = rmsNorm(pb, 'norm', h, dims.hidden, dims.eps);
    hidden[hidden.length - 1] = last;
    return { hiddenStates: hidden, lastHidden: last, embedTable: embed.table };
  });
}

/** One decoder layer: x + attn(rmsnorm(x)), then + mlp(rmsnorm(·)); parameters under the current scope. */
export function llamaBlock(
  pb: ParamBuilder,
  dims: LlamaDims,
  attentionDropout: number,
  h: Value,
  mask: Value,
  cos: Value,
  sin: Value,
  layer: number,
  cache: KvCache | null,
): Value {
  const { hidden, heads, kvHeads, headDim } = dims;
  const a = rmsNorm(pb, 'input_layernorm', h, hidden, dims.eps);
  const attn = pb.scope('self_attn', () => {
    const proj = (name: string, n: number) =>
      splitHeads(linear(pb, name, a, hidden, n * headDim, { bias: dims.qkvBias, std: dims.std }), n);
    const q = applyRotary(proj('q_proj', heads), cos, sin);
    const k0 = applyRotary(proj('k_proj', kvHeads), cos, sin);
    const v0 = proj('v_proj', kvHeads);
    const { k, v } = cache ? cache.update(layer, k0, v0) : { k: k0, v: v0 };
    const y = scaledDotProductAttention(q, k, v, {
      mask,
      scale: 1 / Math.sqrt(headDim),
      dropout: attentionDropout,
      ctx: pb.ctx,
    });
    return linear(pb, 'o_proj', mergeHeads(y), heads * headDim, hidden, { bias: dims.oBias, std: dims.std });
  });
  const h1 = T.add(h, attn);
  const m = rmsNorm(pb, 'post_attention_layernorm', h1, hidden, dims.eps);
  const mlp = pb.scope('mlp', () => {
    const opts = { bias: dims.mlpBias, std: dims.std };
    const gate = dims.act(linear(pb, 'gate_proj', m, hidden, dims.inter, opts));
    const up = linear(pb, 'up_proj', m, hidden, dims.inter, opts);
    return linear(pb, 'down_proj', T.mul(gate, up), dims.inter, hidden, opts);
  });
  return T.add(h1, mlp);
}

export function llamaForward(pb: ParamBuilder, config: LlamaConfig, inputs: DecoderInputs): DecoderOutputs {
  const { hiddenStates, lastHidden, embedTable } = llamaBackbone(pb, config, inputs);
  const logits =
    (config.tie_word_embeddings ?? false)
      ? T.matmul(lastHidden, T.transpose(embedTable, [1, 0]))
      : linear(pb, 'lm_head', lastHidden, config.hidden_size, config.vocab_size, {
          bias: false,
          std: config.initializer_range ?? 0.02,
        });
  return { logits, hiddenStates, lastHidden };
}

/** Llama or Qwen2 as a DecoderLm. */
export function llamaModel(config: LlamaConfig): DecoderLm {
  const dims = llamaDims(config);
  return {
    modelType: config.model_type,
    vocabSize: dims.vocab,
    hiddenSize: dims.hidden,
    numLayers: dims.layers,
    numHeads: dims.heads,
    numKvHeads: dims.kvHeads,
    headDim: dims.headDim,
    maxPositions: config.max_position_embeddings,
    tiedEmbeddings: dims.tied,
    forward: (pb, inputs) => llamaForward(pb, config, inputs),
    backbone: (pb, inputs) => {
      const { hiddenStates, lastHidden } = llamaBackbone(pb, config, inputs);
      return { hiddenStates, lastHidden };
    },
  };
}
