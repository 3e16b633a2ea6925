/**
 * Tiny float64 ONNX programs (one or two nodes) for the large products in linalg. The engine owns general graph
 * building; these few fixed graphs are encoded directly with onnx-buf's protobuf-es schema so linalg does not
 * depend on the engine's IR. Dimensions are symbolic, so one session serves every shape.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProto_DataType,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from 'onnx-buf';

export type ElemType = 'float64' | 'float32' | 'int64';

export interface ValueSpec {
  name: string;
  type: ElemType;
  dims: (number | string)[];
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  ints?: Record<string, number>;
  floats?: Record<string, number>;
}

function valueInfo(v: ValueSpec): ValueInfoProto {
  const elemType =
    v.type === 'float64'
      ? TensorProto_DataType.DOUBLE
      : v.type === 'float32'
        ? TensorProto_DataType.FLOAT
        : TensorProto_DataType.INT64;
  const dim = v.dims.map((d) =>
    create(TensorShapeProto_DimensionSchema, {
      value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
    }),
  );
  return create(ValueInfoProtoSchema, {
    name: v.name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, { elemType, shape: create(TensorShapeProtoSchema, { dim }) }),
      },
    }),
  });
}

function node(n: NodeSpec): NodeProto {
  const attribute = [
    ...Object.entries(n.ints ?? {}).map(([name, i]) =>
      create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(i) }),
    ),
    ...Object.entries(n.floats ?? {}).map(([name, f]) =>
      create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f }),
    ),
  ];
  return create(NodeProtoSchema, { opType: n.op, input: n.inputs, output: n.outputs, attribute });
}

/** Encodes a single-graph model (opset 21, IR 10). */
export function encodeModel(nodes: NodeSpec[], inputs: ValueSpec[], outputs: ValueSpec[]): Uint8Array {
  const graph = create(GraphProtoSchema, {
    name: 'linalg',
    node: nodes.map(node),
    input: inputs.map(valueInfo),
    output: outputs.map(valueInfo),
  });
  const model = create(ModelProtoSchema, {
    irVersion: 10n,
    producerName: 'transferlab-linalg',
    graph,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 21n })],
  });
  return toBinary(ModelProtoSchema, model);
}
