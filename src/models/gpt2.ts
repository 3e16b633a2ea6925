/**
 * GPT-2 (Hugging Face GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, Conv1D projections stored
 * [in, out], tanh GELU ("gelu_new"), eps 1e-5, LM head tied to the token embedding. Parameter names are those of a
 * Hugging Face GPT-2 checkpoint without the "transformer." prefix.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { maybeDropout, mergeHeads, scaledDotProductAttention, splitHeads } from '../nn/attention.ts';
import type { KvCache } from '../nn/kv-cache.ts';
import { conv1d, embedding, layerNorm } from '../nn/layers.ts';
import { init, type ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { decoderMask } from './decoder-mask.ts';
import type { DecoderInputs, DecoderLm } from './types.ts';

export interface Gpt2Config {
  model_type: 'gpt2';
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  activation_function?: string;
  layer_norm_epsilon?: number;
  resid_pdrop?: number;
  embd_pdrop?: number;
  attn_pdrop?: number;
  initializer_range?: number;
  scale_attn_weights?: boolean;
  scale_attn_by_inverse_layer_idx?: boolean;
  tie_word_embeddings?: boolean;
  bos_token_id?: number | null;
  eos_token_id?: number | null;
  pad_token_id?: number | null;
}

export interface Gpt2Outputs {
  logits: Value;
  /** Embedding output and every block's output (before ln_f), as Hugging Face's hidden_states, then ln_f's. */
  hiddenStates: Value[];
  lastHidden: Value;
}

const ACTIVATIONS: Record<string, (x: Value) => Value> = {
  gelu_new: (x) => T.gelu(x, 'tanh'),
  gelu_pytorch_tanh: (x) => T.gelu(x, 'tanh'),
  gelu: (x) => T.gelu(x, 'none'),
  relu: T.relu,
  silu: T.silu,
  swish: T.silu,
  quick_gelu: T.quickGelu,
};

export function activation(name: string, where: string): (x: Value) => Value {
  const f = ACTIVATIONS[name];
  if (!f)
    throw new TlabError(
      `${where}: unknown activation '${name}'; valid: ${Object.keys(ACTIVATIONS).join(', ')}`,
    );
  return f;
}

export interface Gpt2ForwardOptions {
  attentionMask?: Value | null;
  inputsEmbeds?: Value | null;
  positionIds?: Value | null;
  /** Incremental decoding: positions come from the cache and keys/values are read from and written to it. */
  cache?: KvCache | null;
  /** Edits the token embeddings before position embeddings are added (VLM image splicing). */
  editEmbeds?: ((embeds: Value) => Value) | null;
}

/**
 * Forward pass over token ids [B, T] (int64). `attentionMask` [B, T] (1 = token, 0 = padding) is combined with
 * the causal mask; `inputsEmbeds` replaces the token embedding (used by the VLM to splice image features).
 */
export function gpt2Forward(
  pb: ParamBuilder,
  config: Gpt2Config,
  ids: Value,
  options: Gpt2ForwardOptions = {},
): Gpt2Outputs {
  const { hiddenStates, lastHidden, wte } = gpt2Backbone(pb, config, ids, options);
  // tie_word_embeddings false (rare for GPT-2) gives GPT2LMHeadModel a separate lm_head.weight [V, D].
  const head =
    config.tie_word_embeddings === false
      ? pb.scope('lm_head', () => pb.param('weight', [config.vocab_size, config.n_embd], init.normal(0.02)))
      : wte;
  const logits = T.matmul(lastHidden, T.transpose(head, [1, 0]));
  return { logits, hiddenStates, lastHidden };
}

/** GPT-2 without the LM head: hidden states and the token embedding table (for a tied head). */
export function gpt2Backbone(
  pb: ParamBuilder,
  config: Gpt2Config,
  ids: Value,
  options: Gpt2ForwardOptions = {},
): { hiddenStates: Value[]; lastHidden: Value; wte: Value } {
  const ctx = pb.ctx;
  const t = ids.shape[1];
  const d = config.n_embd;
  const eps = config.layer_norm_epsilon ?? 1e-5;
  const std = config.initializer_range ?? 0.02;
  activation(config.activation_function ?? 'gelu_new', 'gpt2 config activation_function');
  if (t > config.n_positions)
    throw new TlabError(`gpt2: sequence length ${t} exceeds n_positions ${config.n_positions}`);
  if (d % config.n_head !== 0)
    throw new TlabError(`gpt2 config: n_embd ${d} is not divisible by n_head ${config.n_head}`);

  const wte = embedding(pb, 'wte', ids, config.vocab_size, d, std);
  const cache = options.cache ?? null;
  const positions =
    options.positionIds ??
    cache?.positions ??
    T.constant(
      ids.graph,
      'int64',
      [t],
      Array.from({ length: t }, (_, i) => i),
    );
  const wpe = embedding(pb, 'wpe', positions, config.n_positions, d, 0.01);
  const tokens = options.inputsEmbeds ?? wte.out;
  let h = T.add(options.editEmbeds ? options.editEmbeds(tokens) : tokens, wpe.out);
  h = maybeDropout(h, config.embd_pdrop ?? 0, ctx);

  const mask = decoderMask(ids, options.attentionMask, cache);
  const hidden: Value[] = [h];
  for (let i = 0; i < config.n_layer; i++) {
    h = pb.scope(`h.${i}`, () => gpt2Block(pb, config, h, mask, i, cache));
    hidden.push(h);
  }
  const last = layerNorm(pb, 'ln_f', h, d, eps);
  hidden[hidden.length - 1] = last;
  return { hiddenStates: hidden, lastHidden: last, wte: wte.table };
}

/** One pre-LayerNorm GPT-2 block (attention and MLP with residuals), parameters under the current scope. */
export function gpt2Block(
  pb: ParamBuilder,
  config: Gpt2Config,
  h: Value,
  mask: Value | null,
  layer: number,
  cache: KvCache | null = null,
): Value {
  const ctx = pb.ctx;
  const d = config.n_embd;
  const eps = config.layer_norm_epsilon ?? 1e-5;
  const std = config.initializer_range ?? 0.02;
  const residStd = std / Math.sqrt(2 * config.n_layer);
  const inner = config.n_inner ?? 4 * d;
  const act = activation(config.activation_function ?? 'gelu_new', 'gpt2 config activation_function');
  const a = layerNorm(pb, 'ln_1', h, d, eps);
  const attnOut = pb.scope('attn', () => {
    const qkv = conv1d(pb, 'c_attn', a, d, 3 * d, std);
    const [q, k0, v0] = T.split(qkv, [d, d, d], -1).map((x) => splitHeads(x, config.n_head));
    const { k, v } = cache ? cache.update(layer, k0, v0) : { k: k0, v: v0 };
    let scale = config.scale_attn_weights === false ? 1 : 1 / Math.sqrt(d / config.n_head);
    if (config.scale_attn_by_inverse_layer_idx) scale /= layer + 1;
    const y = scaledDotProductAttention(q, k, v, { mask, scale, dropout: config.attn_pdrop ?? 0, ctx });
    return conv1d(pb, 'c_proj', mergeHeads(y), d, d, residStd);
  });
  const h1 = T.add(h, maybeDropout(attnOut, config.resid_pdrop ?? 0, ctx));
  const m = layerNorm(pb, 'ln_2', h1, d, eps);
  const mlp = pb.scope('mlp', () =>
    conv1d(pb, 'c_proj', act(conv1d(pb, 'c_fc', m, d, inner, std)), inner, d, residStd),
  );
  return T.add(h1, maybeDropout(mlp, config.resid_pdrop ?? 0, ctx));
}

/** GPT-2 as a DecoderLm. */
export function gpt2Model(config: Gpt2Config): DecoderLm {
  const options = (inputs: DecoderInputs): Gpt2ForwardOptions => ({
    attentionMask: inputs.attentionMask,
    cache: inputs.cache,
    editEmbeds: inputs.editEmbeds,
  });
  return {
    modelType: 'gpt2',
    vocabSize: config.vocab_size,
    hiddenSize: config.n_embd,
    numLayers: config.n_layer,
    numHeads: config.n_head,
    numKvHeads: config.n_head,
    headDim: config.n_embd / config.n_head,
    maxPositions: config.n_positions,
    tiedEmbeddings: config.tie_word_embeddings !== false,
    forward: (pb, inputs) => gpt2Forward(pb, config, inputs.ids, options(inputs)),
    backbone: (pb, inputs) => {
      const { hiddenStates, lastHidden } = gpt2Backbone(pb, config, inputs.ids, options(inputs));
      return { hiddenStates, lastHidden };
    },
  };
}
