/**
 * Hand-written ONNX ModelProto encoder. Chosen over a generated protobuf codec because the engine writes a small,
 * fixed subset of the schema and must not copy multi-hundred-MB weight buffers more than once (the writer
 * references raw tensor bytes until the final concatenation). Field numbers follow onnx.proto3 (IR 10).
 */
import { ONNX_DTYPE } from '../dtype.ts';
import type { OnnxAttr, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './model.ts';
import { ProtoWriter } from './proto-writer.ts';

const ATTR_TYPE = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
  strings: 8,
} as const;

function encodeTensor(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  if (t.dims.length) w.packedInts(1, t.dims);
  w.int(2, ONNX_DTYPE[t.dtype]);
  w.string(8, t.name);
  if (t.external) {
    const entry = (key: string, value: string) => new ProtoWriter().string(1, key).string(2, value);
    w.message(13, entry('location', t.external.location));
    w.message(13, entry('offset', String(t.external.offset)));
    w.message(13, entry('length', String(t.external.length)));
    w.int(14, 1);
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return w;
}

function encodeValueInfo(v: OnnxValueInfo): ProtoWriter {
  const w = new ProtoWriter().string(1, v.name);
  if (v.dtype !== undefined) {
    const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[v.dtype]);
    if (v.shape) {
      const shape = new ProtoWriter();
      for (const d of v.shape) {
        const dim = new ProtoWriter();
        if (typeof d === 'number') dim.int(1, d);
        else dim.string(2, d);
        shape.message(1, dim);
      }
      tensorType.message(2, shape);
    }
    w.message(2, new ProtoWriter().message(1, tensorType));
  }
  return w;
}

function encodeAttr(a: OnnxAttr): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, encodeTensor(a.value));
      break;
    case 'graph':
      w.message(6, encodeGraph(a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
    case 'strings':
      for (const s of a.value) w.string(9, s);
      break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
  return w;
}

function encodeNode(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attrs ?? []) w.message(5, encodeAttr(a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeGraph(g: OnnxGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  return w;
}

/** Serializes a model to ModelProto bytes. */
export function encodeModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsets) {
    const op = new ProtoWriter();
    if (o.domain) op.string(1, o.domain);
    op.int(2, o.version);
    w.message(8, op);
  }
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  return w.finish();
}
