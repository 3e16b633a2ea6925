/**
 * Forward-only graphs for any model kind with the input/output names Hugging Face's ONNX exports use
 * (input_ids, attention_mask, pixel_values → logits, last_hidden_state, pooler_output), for evaluation, feature
 * extraction and ONNX export. Shapes are static: one graph per batch size and sequence length.
 */
import { Graph, type Value } from '../engine/ir/graph.ts';
import { ParamBuilder } from '../nn/module.ts';
import type { LoadedModel } from './hf/registry.ts';
import type { VisionEncoder } from './types.ts';

export interface InferenceShape {
  batch: number;
  /** Token sequence length (text and VLM models). */
  seqLength?: number;
}

export interface InferenceGraphOptions {
  /** Also output every hidden state as `hidden_states.{i}` (and `image_features` for a VLM). */
  hiddenStates?: boolean;
}

export interface InferenceGraph {
  graph: Graph;
  pb: ParamBuilder;
  inputs: Record<string, Value>;
  outputs: Record<string, Value>;
}

export function inferenceGraph(
  loaded: LoadedModel,
  shape: InferenceShape,
  options: InferenceGraphOptions = {},
): InferenceGraph {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const b = shape.batch;
  const text = () => {
    const t = shape.seqLength ?? 1;
    return {
      input_ids: graph.input('input_ids', 'int64', [b, t]),
      attention_mask: graph.input('attention_mask', 'int64', [b, t]),
    };
  };
  const pixels = (e: VisionEncoder) =>
    graph.input('pixel_values', 'float32', [b, e.numChannels, e.imageSize, e.imageSize]);
  const outputs: Record<string, Value> = {};
  const addHidden = (states: readonly Value[]) => {
    if (options.hiddenStates)
      states.forEach((h, i) => {
        outputs[`hidden_states.${i}`] = h;
      });
  };
  let inputs: Record<string, Value>;
  switch (loaded.kind) {
    case 'causal-lm':
    case 'sequence-classifier': {
      inputs = text();
      const out = loaded.model.forward(pb, { ids: inputs.input_ids, attentionMask: inputs.attention_mask });
      outputs.logits = out.logits;
      addHidden(out.hiddenStates);
      break;
    }
    case 'vision-encoder': {
      inputs = { pixel_values: pixels(loaded.model) };
      const out = loaded.model.forward(pb, inputs.pixel_values);
      outputs.last_hidden_state = out.lastHidden;
      outputs.pooler_output = out.pooled;
      addHidden(out.hiddenStates);
      break;
    }
    case 'image-classifier': {
      inputs = { pixel_values: pixels(loaded.model.encoder) };
      const out = loaded.model.forward(pb, inputs.pixel_values);
      outputs.logits = out.logits;
      addHidden(out.hiddenStates);
      break;
    }
    case 'vlm': {
      inputs = { ...text(), pixel_values: pixels(loaded.model.encoder) };
      const out = loaded.model.forward(pb, {
        ids: inputs.input_ids,
        attentionMask: inputs.attention_mask,
        pixelValues: inputs.pixel_values,
      });
      outputs.logits = out.logits;
      addHidden(out.hiddenStates);
      if (options.hiddenStates && out.imageFeatures) outputs.image_features = out.imageFeatures;
      break;
    }
  }
  return { graph, pb, inputs, outputs };
}
