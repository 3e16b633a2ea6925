/**
 * Exports a model's inference graph to `model.onnx` with the weights as initializers, for use outside this
 * project (onnxruntime in Python, C#, browsers). Inputs and outputs carry Hugging Face's names (input_ids,
 * attention_mask, pixel_values → logits, last_hidden_state, pooler_output, hidden_states.{i}). Shapes are static
 * (the batch size and sequence length given). When the initializers exceed `externalDataThreshold` (1 GiB by
 * default; a protobuf cannot exceed 2 GiB) tensors of 1 KiB and more go to `model.onnx_data` as ONNX external data.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel } from '../engine/onnx/encode.ts';
import { lowerGraph } from '../engine/onnx/lower.ts';
import type { OnnxTensor } from '../engine/onnx/model.ts';
import { wrapModel } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { writeChunksAtomic, writeFileAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import type { LoadedModel } from './hf/registry.ts';
import { type InferenceGraphOptions, type InferenceShape, inferenceGraph } from './inference-graph.ts';

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

const EXTERNAL_MIN_BYTES = 1024;
const ALIGN = 4096;

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
  const modelPath = join(dir, 'model.onnx');
  const dataName = 'model.onnx_data';
  const total = lowered.initializers.reduce((s, t) => s + (t.raw?.byteLength ?? 0), 0);
  const external = total > (options.externalDataThreshold ?? 2 ** 30);
  let initializers: OnnxTensor[] = [...lowered.initializers];
  let dataPath: string | null = null;
  if (external) {
    dataPath = join(dir, dataName);
    const chunks: Uint8Array[] = [];
    let offset = 0;
    initializers = initializers.map((t) => {
      if (!t.raw || t.raw.byteLength < EXTERNAL_MIN_BYTES) return t;
      const start = Math.ceil(offset / ALIGN) * ALIGN;
      if (start > offset) chunks.push(new Uint8Array(start - offset));
      chunks.push(t.raw);
      offset = start + t.raw.byteLength;
      return {
        name: t.name,
        dtype: t.dtype,
        dims: t.dims,
        external: { location: dataName, offset: start, length: t.raw.byteLength },
      };
    });
    writeChunksAtomic(dataPath, chunks);
  }
  const metadata = {
    model_type: loaded.model.modelType,
    kind: loaded.kind,
    batch: String(options.batch),
    ...(options.seqLength ? { sequence_length: String(options.seqLength) } : {}),
    ...options.metadata,
  };
  writeFileAtomic(modelPath, encodeModel(wrapModel({ ...lowered, initializers }, metadata)));
  return { modelPath, dataPath, inputs: Object.keys(g.inputs), outputs: Object.keys(g.outputs) };
}
