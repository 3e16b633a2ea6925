/**
 * The static export (`tlab export --static`): a model's inference graph from this project's own model code as
 * one `model.onnx` with the weights as initializers. Inputs and outputs carry Hugging Face's names (input_ids,
 * attention_mask, pixel_values → logits, last_hidden_state, pooler_output, hidden_states.{i}); shapes are static
 * (the batch size and sequence length given) and there is no KV cache. Large weights go to `model.onnx_data`
 * (onnx-export-file.ts). The portable export with dynamic axes and a cache is onnx-export-folder.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { lowerGraph } from '../engine/onnx/lower.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';
import type { LoadedModel } from './hf/registry.ts';
import { type InferenceGraphOptions, type InferenceShape, inferenceGraph } from './inference-graph.ts';
import { writeOnnxFile } from './onnx-export-file.ts';

export interface OnnxExportOptions extends InferenceShape, InferenceGraphOptions {
  /** Move weights to model.onnx_data when all initializers together exceed this many bytes (default 1 GiB). */
  externalDataThreshold?: number;
  /** Extra metadata_props entries. */
  metadata?: Record<string, string>;
}

export interface OnnxExportResult {
  modelPath: string;
  /** model.onnx_data, or null when every initializer is inline. */
  dataPath: string | null;
  inputs: string[];
  outputs: string[];
}

export function exportOnnx(
  dir: string,
  loaded: LoadedModel,
  weights: ReadonlyMap<string, HostTensor>,
  options: OnnxExportOptions,
): OnnxExportResult {
  const g = inferenceGraph(loaded, options, options);
  const bind = new Map<string, HostTensor>();
  for (const name of g.pb.specs.keys()) {
    const t = weights.get(name);
    if (t) bind.set(name, t);
  }
  const lowered = lowerGraph(g.graph, { outputs: g.outputs, bind, name: loaded.model.modelType });
  const missing = lowered.inputs.filter((i) => !(i.name in g.inputs)).map((i) => i.name);
  if (missing.length)
    throw new TlabError(`exportOnnx: weights lack ${missing.length} parameters (first: '${missing[0]}')`);
  mkdirSync(dir, { recursive: true });
  const metadata = {
    model_type: loaded.model.modelType,
    kind: loaded.kind,
    batch: String(options.batch),
    ...(options.seqLength ? { sequence_length: String(options.seqLength) } : {}),
    ...options.metadata,
  };
  const { modelPath, dataPath } = writeOnnxFile(join(dir, 'model.onnx'), lowered, {
    externalDataThreshold: options.externalDataThreshold,
    metadata,
  });
  return { modelPath, dataPath, inputs: Object.keys(g.inputs), outputs: Object.keys(g.outputs) };
}
