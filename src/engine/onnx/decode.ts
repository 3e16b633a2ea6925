/**
 * ONNX ModelProto decoder built on onnx-buf (protobuf-es, ONNX 1.20 schema): reads ONNX files written elsewhere
 * (e.g. Hugging Face exports) into the engine's plain-data model, and checks the engine's own encoder in tests.
 */
import { fromBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AT,
  type AttributeProto,
  type GraphProto,
  ModelProtoSchema,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { TlabError } from '../../util/errors.ts';
import { byteSize, type DType, dtypeFromOnnx } from '../dtype.ts';
import { allocData, numel } from '../tensor.ts';
import type { OnnxAttr, OnnxGraph, OnnxModel, OnnxTensor, OnnxValueInfo } from './model.ts';

function tensorFromProto(t: TensorProto, where: string): OnnxTensor {
  const dtype = dtypeFromOnnx(t.dataType);
  if (!dtype)
    throw new TlabError(`${where}: tensor '${t.name}' has unsupported ONNX data type ${t.dataType}`);
  const dims = t.dims.map(Number);
  if (t.dataLocation === 1) {
    const kv = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
    return {
      name: t.name,
      dtype,
      dims,
      external: {
        location: kv.location ?? '',
        offset: Number(kv.offset ?? 0),
        length: Number(kv.length ?? numel(dims) * byteSize(dtype)),
      },
    };
  }
  if (t.rawData.byteLength) return { name: t.name, dtype, dims, raw: t.rawData };
  return { name: t.name, dtype, dims, raw: typedFields(t, dtype, numel(dims)) };
}

/** Tensors stored in the typed repeated fields instead of raw_data. */
function typedFields(t: TensorProto, dtype: DType, n: number): Uint8Array {
  const data = allocData(dtype, n);
  if (data instanceof Float32Array) data.set(t.floatData);
  else if (data instanceof Float64Array) data.set(t.doubleData);
  else if (data instanceof BigInt64Array) data.set(t.int64Data);
  else if (data instanceof Uint16Array) data.set(t.int32Data);
  else (data as Int32Array | Uint8Array | Int8Array).set(t.int32Data);
  return new Uint8Array(data.buffer);
}

function valueInfoFromProto(v: ValueInfoProto): OnnxValueInfo {
  const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  if (!tt) return { name: v.name };
  const dtype = dtypeFromOnnx(tt.elemType);
  const shape = tt.shape?.dim.map((d) =>
    d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : '?',
  );
  return { name: v.name, dtype, shape };
}

function attrFromProto(a: AttributeProto, where: string): OnnxAttr {
  switch (a.type) {
    case AT.FLOAT:
      return { name: a.name, kind: 'float', value: a.f };
    case AT.INT:
      return { name: a.name, kind: 'int', value: Number(a.i) };
    case AT.STRING:
      return { name: a.name, kind: 'string', value: new TextDecoder().decode(a.s) };
    case AT.FLOATS:
      return { name: a.name, kind: 'floats', value: [...a.floats] };
    case AT.INTS:
      return { name: a.name, kind: 'ints', value: a.ints.map(Number) };
    case AT.STRINGS:
      return { name: a.name, kind: 'strings', value: a.strings.map((s) => new TextDecoder().decode(s)) };
    case AT.TENSOR:
      return { name: a.name, kind: 'tensor', value: tensorFromProto(a.t!, where) };
    case AT.GRAPH:
      return { name: a.name, kind: 'graph', value: graphFromProto(a.g!, where) };
    default:
      throw new TlabError(`${where}: attribute '${a.name}' has unsupported type ${a.type}`);
  }
}

function graphFromProto(g: GraphProto, where: string): OnnxGraph {
  return {
    name: g.name,
    nodes: g.node.map((n) => ({
      opType: n.opType,
      inputs: n.input,
      outputs: n.output,
      name: n.name || undefined,
      domain: n.domain || undefined,
      attrs: n.attribute.map((a) => attrFromProto(a, where)),
    })),
    initializers: g.initializer.map((t) => tensorFromProto(t, where)),
    inputs: g.input.map(valueInfoFromProto),
    outputs: g.output.map(valueInfoFromProto),
  };
}

/** Decodes ModelProto bytes; `where` (a file name) is used in errors. */
export function decodeModel(bytes: Uint8Array, where = 'model.onnx'): OnnxModel {
  let proto: ReturnType<typeof fromBinary<typeof ModelProtoSchema>>;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (error) {
    throw new TlabError(`${where}: not a valid ONNX model (${(error as Error).message})`);
  }
  if (!proto.graph) throw new TlabError(`${where}: ONNX model has no graph`);
  return {
    irVersion: Number(proto.irVersion),
    opsets: proto.opsetImport.map((o) => ({ domain: o.domain, version: Number(o.version) })),
    producerName: proto.producerName,
    producerVersion: proto.producerVersion,
    graph: graphFromProto(proto.graph, where),
    metadata: Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value])),
  };
}
