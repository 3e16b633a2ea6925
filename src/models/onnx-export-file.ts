/**
 * Writes an ONNX graph to disk as a ModelProto (IR 10, opset 21, plus com.microsoft when the graph uses its
 * ops), atomically. When the initializers exceed `externalDataThreshold` bytes (1 GiB by default; a protobuf
 * cannot exceed 2 GiB) tensors of 1 KiB and more go to `<file>_data` as ONNX external data, 4 KiB aligned: the
 * name onnxruntime, optimum and transformers.js (`use_external_data_format`) expect beside `<file>`.
 */
import { basename } from 'node:path';
import { encodeModel } from '../engine/onnx/encode.ts';
import {
  DEFAULT_IR_VERSION,
  DEFAULT_OPSET,
  type OnnxGraph,
  type OnnxModel,
  type OnnxTensor,
} from '../engine/onnx/model.ts';
import { writeChunksAtomic, writeFileAtomic } from '../util/atomic-write.ts';

export interface OnnxFileOptions {
  externalDataThreshold?: number;
  metadata?: Record<string, string>;
}

export interface OnnxFileResult {
  modelPath: string;
  /** `<file>_data`, or null when every initializer is inline. */
  dataPath: string | null;
}

const EXTERNAL_MIN_BYTES = 1024;
const ALIGN = 4096;
export const DEFAULT_EXTERNAL_THRESHOLD = 2 ** 30;

export function writeOnnxFile(path: string, graph: OnnxGraph, options: OnnxFileOptions = {}): OnnxFileResult {
  const total = graph.initializers.reduce((s, t) => s + (t.raw?.byteLength ?? 0), 0);
  let initializers: readonly OnnxTensor[] = graph.initializers;
  let dataPath: string | null = null;
  if (total > (options.externalDataThreshold ?? DEFAULT_EXTERNAL_THRESHOLD)) {
    dataPath = `${path}_data`;
    const location = basename(dataPath);
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
        external: { location, offset: start, length: t.raw.byteLength },
      };
    });
    writeChunksAtomic(dataPath, chunks);
  }
  const usesMicrosoft = graph.nodes.some((n) => n.domain === 'com.microsoft');
  const model: OnnxModel = {
    irVersion: DEFAULT_IR_VERSION,
    opsets: [
      { domain: '', version: DEFAULT_OPSET },
      ...(usesMicrosoft ? [{ domain: 'com.microsoft', version: 1 }] : []),
    ],
    producerName: 'transferlab',
    producerVersion: '0.1.0',
    graph: { ...graph, initializers },
    metadata: options.metadata,
  };
  writeFileAtomic(path, encodeModel(model));
  return { modelPath: path, dataPath };
}
