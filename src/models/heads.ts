/**
 * Classification heads as Hugging Face builds them. Sequence classification (GPT2/Llama/Qwen2
 * ForSequenceClassification): `score` Linear without bias on the last non-padding token, the rightmost position
 * whose id differs from pad_token_id (handles left and right padding). Image classification:
 * ViTForImageClassification's `classifier` on the layernormed CLS token; CLIPForImageClassification's on the mean
 * of the patch tokens of the last hidden state.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { linear } from '../nn/layers.ts';
import { TlabError } from '../util/errors.ts';
import type { DecoderLm, ImageClassifier, SequenceClassifier, VisionEncoder } from './types.ts';

/**
 * Position [B] (int64) of each row's last real token: the rightmost id ≠ padTokenId (HF), else the rightmost
 * attention-mask 1, else the last position.
 */
export function lastTokenIndex(ids: Value, padTokenId: number | null, attentionMask?: Value | null): Value {
  const [b, t] = ids.shape;
  const positions = T.arange(ids.graph, t, 'float32');
  let real: Value | null = null;
  if (padTokenId !== null) real = T.cast(T.notEqual(ids, padTokenId), 'float32');
  else if (attentionMask) real = T.cast(attentionMask, 'float32');
  if (!real) return T.constant(ids.graph, 'int64', [b], new Array<number>(b).fill(t - 1));
  // max(position · is_real) is HF's argmax(token_indices · non_pad_mask); 0 for an all-padding row.
  return T.cast(T.reduceMax(T.mul(real, positions), -1), 'int64');
}

/** Rows x[b, index[b], :] of x [B, T, D] → [B, D]. */
export function pickRows(x: Value, index: Value): Value {
  const [b, , d] = x.shape;
  const idx = T.expand(T.reshape(index, [b, 1, 1]), [b, 1, d]);
  return T.reshape(T.gatherElements(x, idx, 1), [b, d]);
}

export function sequenceClassifier(
  decoder: DecoderLm,
  options: { numLabels: number; padTokenId: number | null },
): SequenceClassifier {
  checkLabels(options.numLabels);
  return {
    modelType: decoder.modelType,
    numLabels: options.numLabels,
    padTokenId: options.padTokenId,
    decoder,
    forward(pb, inputs) {
      const out = decoder.backbone(pb, { ids: inputs.ids, attentionMask: inputs.attentionMask });
      const pooled = pickRows(
        out.lastHidden,
        lastTokenIndex(inputs.ids, options.padTokenId, inputs.attentionMask),
      );
      const logits = linear(pb, 'score', pooled, decoder.hiddenSize, options.numLabels, { bias: false });
      return { logits, pooled, hiddenStates: out.hiddenStates };
    },
  };
}

/** How an image classifier pools the encoder's last hidden state. */
export type ImagePooling = 'cls' | 'mean-patches';

export function imageClassifier(
  encoder: VisionEncoder,
  options: { numLabels: number; pooling?: ImagePooling },
): ImageClassifier {
  checkLabels(options.numLabels);
  const pooling = options.pooling ?? (encoder.modelType === 'vit' ? 'cls' : 'mean-patches');
  return {
    modelType: encoder.modelType,
    numLabels: options.numLabels,
    encoder,
    forward(pb, pixels) {
      const out = encoder.forward(pb, pixels);
      const last = out.lastHidden;
      const pooled =
        pooling === 'cls'
          ? T.reshape(T.slice(last, [1], [0], [1]), [last.shape[0], last.shape[2]])
          : T.reduceMean(T.slice(last, [1], [1], [last.shape[1]]), 1);
      const logits = linear(pb, 'classifier', pooled, encoder.hiddenSize, options.numLabels);
      return { logits, pooled, hiddenStates: out.hiddenStates };
    },
  };
}

function checkLabels(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new TlabError(`classification head: numLabels must be a positive integer, got ${n}`);
}
