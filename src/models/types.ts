/**
 * The contracts every architecture implements, so training, generation, evaluation and feature extraction work
 * with any of them. Models are graph builders: they declare parameters through a ParamBuilder (Hugging Face
 * names) and return symbolic outputs; compilation and weights are the caller's business.
 */
import type { Value } from '../engine/ir/graph.ts';
import type { KvCache } from '../nn/kv-cache.ts';
import type { ParamBuilder } from '../nn/module.ts';

export interface DecoderInputs {
  /** Token ids [B, T], int64. */
  ids: Value;
  /** [B, T] int64, 1 = token, 0 = padding; ignored when `cache` is given (the cache carries its own mask). */
  attentionMask?: Value | null;
  /** Incremental decoding state; positions then come from the cache. */
  cache?: KvCache | null;
  /** Edits the token embeddings [B, T, D] before the first block (a VLM splices image features here). */
  editEmbeds?: ((embeds: Value) => Value) | null;
}

export interface DecoderOutputs {
  /** [B, T, V] */
  logits: Value;
  /** As Hugging Face's output_hidden_states: the embeddings, then each block's output (the last after the final norm). */
  hiddenStates: Value[];
  /** [B, T, D] final hidden state (after the final norm). */
  lastHidden: Value;
}

/** A decoder-only language model (GPT-2, Llama, Qwen2). */
export interface DecoderLm {
  readonly modelType: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxPositions: number;
  forward(pb: ParamBuilder, inputs: DecoderInputs): DecoderOutputs;
}
