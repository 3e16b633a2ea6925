/**
 * Decoder LMs (GPT-2, Llama, Qwen2) as one ONNX graph with a KV cache, in the layout Hugging Face optimum exports
 * (`model.onnx` / `decoder_model_merged.onnx`) and transformers.js drives. Matched against optimum-onnx
 * 1939f27a (optimum/exporters/onnx/config.py TextDecoderWithPositionIdsOnnxConfig, base.py add_past_key_values)
 * and transformers.js 4.3.2 (dist/transformers.node.mjs: addPastKeyValues, create_position_ids, getCacheNames):
 *
 * inputs   input_ids [batch_size, sequence_length] int64 (or inputs_embeds [batch_size, sequence_length, D]
 *          float32 for a VLM's decoder), attention_mask [batch_size, past_sequence_length + sequence_length]
 *          int64, position_ids [batch_size, sequence_length] int64,
 *          past_key_values.{i}.key|value [batch_size, num_key_value_heads, past_sequence_length, head_dim]
 * outputs  logits [batch_size, sequence_length, vocab_size],
 *          present.{i}.key|value [batch_size, num_key_value_heads, past_sequence_length + sequence_length, head_dim]
 *
 * Heads and head size are static (transformers.js reads them from the input metadata to build the empty cache
 * of the first step, where past_sequence_length is 0).
 */
import type { HostTensor } from '../engine/tensor.ts';
import type { Gpt2Config } from './gpt2.ts';
import { type LlamaConfig, llamaDims } from './llama.ts';
import { type ExportGraph, OnnxBuilder } from './onnx-export-builder.ts';
import {
  activation,
  attention,
  causalPaddingBias,
  conv1d,
  ExportWeights,
  layerNorm,
  linear,
  mergeHeads,
  rmsNorm,
  splitHeads,
} from './onnx-export-layers.ts';
import { ropeInverseFrequencies } from './rope.ts';
import type { DecoderLm } from './types.ts';

export type DecoderConfig = Gpt2Config | LlamaConfig;

export interface DecoderExportOptions {
  /** Take `inputs_embeds` instead of `input_ids` (a VLM's decoder; embed_tokens.onnx makes the embeddings). */
  inputsEmbeds?: boolean;
  /** Parameter name prefix (e.g. "language_model." inside a VLM). */
  prefix?: string;
  name?: string;
}

const BATCH = 'batch_size';
const SEQ = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'past_sequence_length + sequence_length';

/** The decoder-with-past graph of a GPT-2 / Llama / Qwen2 config. */
export function decoderWithPastGraph(
  config: DecoderConfig,
  decoder: DecoderLm,
  weights: ReadonlyMap<string, HostTensor>,
  options: DecoderExportOptions = {},
): ExportGraph {
  const b = new OnnxBuilder(options.name ?? `${config.model_type}-decoder-with-past`);
  const w = new ExportWeights(b, weights, options.prefix ?? '');
  const { numLayers, numKvHeads, headDim, hiddenSize, vocabSize } = decoder;
  const tokens = options.inputsEmbeds
    ? b.input('inputs_embeds', 'float32', [BATCH, SEQ, hiddenSize])
    : b.input('input_ids', 'int64', [BATCH, SEQ]);
  const attentionMask = b.input('attention_mask', 'int64', [BATCH, TOTAL]);
  const positionIds = b.input('position_ids', 'int64', [BATCH, SEQ]);
  const past = Array.from({ length: numLayers }, (_, i) => ({
    key: b.input(`past_key_values.${i}.key`, 'float32', [BATCH, numKvHeads, PAST, headDim]),
    value: b.input(`past_key_values.${i}.value`, 'float32', [BATCH, numKvHeads, PAST, headDim]),
  }));
  const bias = causalPaddingBias(b, attentionMask, past[0].key, tokens);
  const step: DecoderStep = {
    b,
    w,
    tokens,
    inputsEmbeds: options.inputsEmbeds ?? false,
    positionIds,
    past,
    bias,
  };
  const { hidden, presents } =
    config.model_type === 'gpt2' ? gpt2Body(step, config) : llamaBody(step, config);
  const head = decoder.tiedEmbeddings
    ? b.transpose(w.get(config.model_type === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight'), [1, 0])
    : w.transposed('lm_head.weight');
  const logits = b.scope('lm_head', () => b.matmul(hidden, head));
  b.output('logits', logits, 'float32', [BATCH, SEQ, vocabSize]);
  presents.forEach((p, i) => {
    b.output(`present.${i}.key`, p.key, 'float32', [BATCH, numKvHeads, TOTAL, headDim]);
    b.output(`present.${i}.value`, p.value, 'float32', [BATCH, numKvHeads, TOTAL, headDim]);
  });
  return b.build();
}

interface DecoderStep {
  b: OnnxBuilder;
  w: ExportWeights;
  tokens: string;
  inputsEmbeds: boolean;
  positionIds: string;
  past: { key: string; value: string }[];
  bias: string;
}

interface BodyResult {
  /** [B, T, D] after the final norm. */
  hidden: string;
  presents: { key: string; value: string }[];
}

function gpt2Body(s: DecoderStep, config: Gpt2Config): BodyResult {
  const { b, w } = s;
  const d = config.n_embd;
  const heads = config.n_head;
  const hd = d / heads;
  const eps = config.layer_norm_epsilon ?? 1e-5;
  const act = config.activation_function ?? 'gelu_new';
  const embeds = s.inputsEmbeds ? s.tokens : b.op('Gather', [w.get('wte.weight'), s.tokens]);
  let h = b.add(embeds, b.op('Gather', [w.get('wpe.weight'), s.positionIds]));
  const presents: BodyResult['presents'] = [];
  for (let i = 0; i < config.n_layer; i++) {
    h = b.scope(`h.${i}`, () => {
      const p = `h.${i}`;
      const a = layerNorm(b, w, `${p}.ln_1`, h, eps);
      const attnOut = b.scope('attn', () => {
        const qkv = conv1d(b, w, `${p}.attn.c_attn`, a);
        const [q, k0, v0] = b.splitLast(qkv, [d, d, d]).map((x) => splitHeads(b, x, heads, hd));
        const key = b.concat([s.past[i].key, k0], 2);
        const value = b.concat([s.past[i].value, v0], 2);
        presents.push({ key, value });
        let scale = config.scale_attn_weights === false ? 1 : 1 / Math.sqrt(hd);
        if (config.scale_attn_by_inverse_layer_idx) scale /= i + 1;
        const y = attention(b, q, key, value, { heads, kvHeads: heads, headDim: hd, scale }, s.bias);
        return conv1d(b, w, `${p}.attn.c_proj`, mergeHeads(b, y, d));
      });
      const h1 = b.add(h, attnOut);
      const m = layerNorm(b, w, `${p}.ln_2`, h1, eps);
      const mlp = b.scope('mlp', () =>
        conv1d(b, w, `${p}.mlp.c_proj`, activation(b, act, conv1d(b, w, `${p}.mlp.c_fc`, m))),
      );
      return b.add(h1, mlp);
    });
  }
  return { hidden: layerNorm(b, w, 'ln_f', h, eps), presents };
}

function llamaBody(s: DecoderStep, config: LlamaConfig): BodyResult {
  const { b, w } = s;
  const dims = llamaDims(config);
  const { heads, kvHeads, headDim } = dims;
  const act = config.hidden_act ?? 'silu';
  let h = s.inputsEmbeds ? s.tokens : b.op('Gather', [w.get('model.embed_tokens.weight'), s.tokens]);
  // RoPE angles in the graph, position · inverse frequency (float32, as Hugging Face's rotary embedding), for
  // the rotate-half layout: frequency j mod D/2 at dimension j. Dynamic NTK scaling, which Hugging Face
  // recomputes per length, is taken at the original context (unscaled): exact up to that length.
  const { cos, sin } = b.scope('rotary', () => {
    const within = dims.rope.originalMaxPositions ?? config.max_position_embeddings;
    const half = ropeInverseFrequencies(dims.rope, headDim, config.max_position_embeddings, within);
    const freqs = b.constant('float32', [...half, ...half]);
    const angles = b.mul(b.unsqueeze(b.cast(s.positionIds, 'float32'), [2]), freqs); // [B, T, D]
    return {
      cos: b.unsqueeze(b.op('Cos', [angles]), [1]),
      sin: b.unsqueeze(b.op('Sin', [angles]), [1]),
    };
  });
  const rotary = (x: string) => {
    const [x1, x2] = b.splitLast(x, [headDim / 2, headDim / 2]);
    const rotated = b.concat([b.op('Neg', [x2]), x1], -1);
    return b.add(b.mul(x, cos), b.mul(rotated, sin));
  };
  const presents: BodyResult['presents'] = [];
  for (let i = 0; i < dims.layers; i++) {
    h = b.scope(`model.layers.${i}`, () => {
      const p = `model.layers.${i}`;
      const a = rmsNorm(b, w, `${p}.input_layernorm`, h, dims.eps);
      const attn = b.scope('self_attn', () => {
        const proj = (name: string, n: number) =>
          splitHeads(b, linear(b, w, `${p}.self_attn.${name}`, a, dims.qkvBias), n, headDim);
        const q = rotary(proj('q_proj', heads));
        const key = b.concat([s.past[i].key, rotary(proj('k_proj', kvHeads))], 2);
        const value = b.concat([s.past[i].value, proj('v_proj', kvHeads)], 2);
        presents.push({ key, value });
        const y = attention(
          b,
          q,
          key,
          value,
          { heads, kvHeads, headDim, scale: 1 / Math.sqrt(headDim) },
          s.bias,
        );
        return linear(b, w, `${p}.self_attn.o_proj`, mergeHeads(b, y, heads * headDim), dims.oBias);
      });
      const h1 = b.add(h, attn);
      const m = rmsNorm(b, w, `${p}.post_attention_layernorm`, h1, dims.eps);
      const mlp = b.scope('mlp', () => {
        const gate = activation(b, act, linear(b, w, `${p}.mlp.gate_proj`, m, dims.mlpBias));
        const up = linear(b, w, `${p}.mlp.up_proj`, m, dims.mlpBias);
        return linear(b, w, `${p}.mlp.down_proj`, b.mul(gate, up), dims.mlpBias);
      });
      return b.add(h1, mlp);
    });
  }
  return { hidden: rmsNorm(b, w, 'model.norm', h, dims.eps), presents };
}

/** embed_tokens.onnx of a VLM: input_ids [batch_size, sequence_length] → inputs_embeds [.., D]. */
export function embedTokensGraph(
  config: DecoderConfig,
  decoder: DecoderLm,
  weights: ReadonlyMap<string, HostTensor>,
  prefix = '',
): ExportGraph {
  const b = new OnnxBuilder(`${config.model_type}-embed-tokens`);
  const w = new ExportWeights(b, weights, prefix);
  const ids = b.input('input_ids', 'int64', [BATCH, SEQ]);
  const table = config.model_type === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  b.output('inputs_embeds', b.op('Gather', [w.get(table), ids]), 'float32', [BATCH, SEQ, decoder.hiddenSize]);
  return b.build();
}
