/**
 * The few TensorBoard protobuf messages a training log needs, encoded and decoded with the wire-format
 * primitives of @bufbuild/protobuf. Field numbers are those of tensorboard/compat/proto/{event,summary,
 * tensor,tensor_shape,histogram}.proto.
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

/** Event: double wall_time = 1; int64 step = 2; oneof { string file_version = 3; Summary summary = 5; ... } */
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
/** Summary: repeated Value value = 1. */
const SUMMARY_VALUE = 1;
/** Summary.Value: tag = 1; metadata = 9; oneof { float simple_value = 2; HistogramProto histo = 5; TensorProto tensor = 8 } */
const VALUE = { tag: 1, simpleValue: 2, histo: 5, tensor: 8, metadata: 9 } as const;
/** SummaryMetadata: PluginData plugin_data = 1 { string plugin_name = 1; bytes content = 2 } */
const METADATA_PLUGIN_DATA = 1;
const PLUGIN_NAME = 1;
/** TensorProto: dtype = 1; tensor_shape = 2; tensor_content = 4; float_val = 5; double_val = 6; string_val = 8 */
const TENSOR = { dtype: 1, shape: 2, content: 4, floatVal: 5, doubleVal: 6, stringVal: 8 } as const;
/** TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 } */
const SHAPE_DIM = 2;
const DIM_SIZE = 1;
/** HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5, packed bucket_limit 6, packed bucket 7 (doubles). */
const HISTO = { min: 1, max: 2, num: 3, sum: 4, sumSquares: 5, bucketLimit: 6, bucket: 7 } as const;

export const DT_FLOAT = 1;
export const DT_DOUBLE = 2;
export const DT_STRING = 7;

export interface HistogramData {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  /** Right edge of each bucket. */
  bucketLimit: number[];
  bucket: number[];
}

export interface TensorData {
  dtype: number;
  shape: number[];
  floatVal: number[];
  doubleVal: number[];
  stringVal: Uint8Array[];
  content?: Uint8Array;
}

export type SummaryValue = {
  tag: string;
  /** plugin_data.plugin_name of the value's metadata, when it carries one. */
  pluginName?: string;
  simpleValue?: number;
  histo?: HistogramData;
  tensor?: TensorData;
};

export interface TensorBoardEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  summary?: SummaryValue[];
}

export function encodeEvent(event: TensorBoardEvent): Uint8Array {
  const w = new BinaryWriter();
  w.tag(EVENT.wallTime, WireType.Bit64).double(event.wallTime);
  if (event.step !== 0) w.tag(EVENT.step, WireType.Varint).int64(event.step);
  if (event.fileVersion !== undefined)
    w.tag(EVENT.fileVersion, WireType.LengthDelimited).string(event.fileVersion);
  if (event.summary) {
    w.tag(EVENT.summary, WireType.LengthDelimited).fork();
    for (const value of event.summary) {
      w.tag(SUMMARY_VALUE, WireType.LengthDelimited).fork();
      encodeValue(w, value);
      w.join();
    }
    w.join();
  }
  return w.finish();
}

function encodeValue(w: BinaryWriter, value: SummaryValue): void {
  w.tag(VALUE.tag, WireType.LengthDelimited).string(value.tag);
  if (value.simpleValue !== undefined) w.tag(VALUE.simpleValue, WireType.Bit32).float(value.simpleValue);
  if (value.histo) {
    const h = value.histo;
    w.tag(VALUE.histo, WireType.LengthDelimited).fork();
    w.tag(HISTO.min, WireType.Bit64).double(h.min);
    w.tag(HISTO.max, WireType.Bit64).double(h.max);
    w.tag(HISTO.num, WireType.Bit64).double(h.num);
    w.tag(HISTO.sum, WireType.Bit64).double(h.sum);
    w.tag(HISTO.sumSquares, WireType.Bit64).double(h.sumSquares);
    packedDoubles(w, HISTO.bucketLimit, h.bucketLimit);
    packedDoubles(w, HISTO.bucket, h.bucket);
    w.join();
  }
  if (value.tensor) {
    const t = value.tensor;
    w.tag(VALUE.tensor, WireType.LengthDelimited).fork();
    w.tag(TENSOR.dtype, WireType.Varint).int32(t.dtype);
    w.tag(TENSOR.shape, WireType.LengthDelimited).fork();
    for (const size of t.shape) {
      w.tag(SHAPE_DIM, WireType.LengthDelimited).fork();
      w.tag(DIM_SIZE, WireType.Varint).int64(size);
      w.join();
    }
    w.join();
    if (t.floatVal.length > 0) {
      w.tag(TENSOR.floatVal, WireType.LengthDelimited).fork();
      for (const x of t.floatVal) w.float(x);
      w.join();
    }
    packedDoubles(w, TENSOR.doubleVal, t.doubleVal);
    for (const s of t.stringVal) w.tag(TENSOR.stringVal, WireType.LengthDelimited).bytes(s);
    w.join();
  }
  if (value.pluginName !== undefined) {
    w.tag(VALUE.metadata, WireType.LengthDelimited).fork();
    w.tag(METADATA_PLUGIN_DATA, WireType.LengthDelimited).fork();
    w.tag(PLUGIN_NAME, WireType.LengthDelimited).string(value.pluginName);
    w.join();
    w.join();
  }
}

function packedDoubles(w: BinaryWriter, field: number, values: readonly number[]): void {
  if (values.length === 0) return;
  w.tag(field, WireType.LengthDelimited).fork();
  for (const x of values) w.double(x);
  w.join();
}

/** Decodes an Event, keeping the fields above and skipping all others (graphs, session logs, ...). */
export function decodeEvent(bytes: Uint8Array): TensorBoardEvent {
  const r = new BinaryReader(bytes);
  const event: TensorBoardEvent = { wallTime: 0, step: 0 };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === EVENT.wallTime && wire === WireType.Bit64) event.wallTime = r.double();
    else if (field === EVENT.step && wire === WireType.Varint) event.step = Number(r.int64());
    else if (field === EVENT.fileVersion && wire === WireType.LengthDelimited) event.fileVersion = r.string();
    else if (field === EVENT.summary && wire === WireType.LengthDelimited)
      event.summary = decodeSummary(r.bytes());
    else r.skip(wire);
  }
  return event;
}

function decodeSummary(bytes: Uint8Array): SummaryValue[] {
  const r = new BinaryReader(bytes);
  const values: SummaryValue[] = [];
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === SUMMARY_VALUE && wire === WireType.LengthDelimited) values.push(decodeValue(r.bytes()));
    else r.skip(wire);
  }
  return values;
}

function decodeValue(bytes: Uint8Array): SummaryValue {
  const r = new BinaryReader(bytes);
  const value: SummaryValue = { tag: '' };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === VALUE.tag && wire === WireType.LengthDelimited) value.tag = r.string();
    else if (field === VALUE.simpleValue && wire === WireType.Bit32) value.simpleValue = r.float();
    else if (field === VALUE.histo && wire === WireType.LengthDelimited)
      value.histo = decodeHistogram(r.bytes());
    else if (field === VALUE.tensor && wire === WireType.LengthDelimited)
      value.tensor = decodeTensor(r.bytes());
    else if (field === VALUE.metadata && wire === WireType.LengthDelimited)
      value.pluginName = decodePluginName(r.bytes());
    else r.skip(wire);
  }
  return value;
}

function decodePluginName(bytes: Uint8Array): string | undefined {
  const r = new BinaryReader(bytes);
  let name: string | undefined;
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === METADATA_PLUGIN_DATA && wire === WireType.LengthDelimited) {
      const inner = new BinaryReader(r.bytes());
      while (inner.pos < inner.len) {
        const [f, w] = inner.tag();
        if (f === PLUGIN_NAME && w === WireType.LengthDelimited) name = inner.string();
        else inner.skip(w);
      }
    } else r.skip(wire);
  }
  return name;
}

function decodeHistogram(bytes: Uint8Array): HistogramData {
  const r = new BinaryReader(bytes);
  const h: HistogramData = { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === HISTO.min && wire === WireType.Bit64) h.min = r.double();
    else if (field === HISTO.max && wire === WireType.Bit64) h.max = r.double();
    else if (field === HISTO.num && wire === WireType.Bit64) h.num = r.double();
    else if (field === HISTO.sum && wire === WireType.Bit64) h.sum = r.double();
    else if (field === HISTO.sumSquares && wire === WireType.Bit64) h.sumSquares = r.double();
    else if (field === HISTO.bucketLimit) readDoubles(r, wire, h.bucketLimit);
    else if (field === HISTO.bucket) readDoubles(r, wire, h.bucket);
    else r.skip(wire);
  }
  return h;
}

function decodeTensor(bytes: Uint8Array): TensorData {
  const r = new BinaryReader(bytes);
  const t: TensorData = { dtype: 0, shape: [], floatVal: [], doubleVal: [], stringVal: [] };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === TENSOR.dtype && wire === WireType.Varint) t.dtype = r.int32();
    else if (field === TENSOR.shape && wire === WireType.LengthDelimited) t.shape = decodeShape(r.bytes());
    else if (field === TENSOR.content && wire === WireType.LengthDelimited) t.content = r.bytes();
    else if (field === TENSOR.floatVal) readFloats(r, wire, t.floatVal);
    else if (field === TENSOR.doubleVal) readDoubles(r, wire, t.doubleVal);
    else if (field === TENSOR.stringVal && wire === WireType.LengthDelimited) t.stringVal.push(r.bytes());
    else r.skip(wire);
  }
  return t;
}

function decodeShape(bytes: Uint8Array): number[] {
  const r = new BinaryReader(bytes);
  const dims: number[] = [];
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === SHAPE_DIM && wire === WireType.LengthDelimited) {
      const dim = new BinaryReader(r.bytes());
      let size = 0;
      while (dim.pos < dim.len) {
        const [f, w] = dim.tag();
        if (f === DIM_SIZE && w === WireType.Varint) size = Number(dim.int64());
        else dim.skip(w);
      }
      dims.push(size);
    } else r.skip(wire);
  }
  return dims;
}

/** Repeated numeric fields may arrive packed (one length-delimited run) or one element per tag. */
function readDoubles(r: BinaryReader, wire: WireType, out: number[]): void {
  if (wire === WireType.Bit64) {
    out.push(r.double());
    return;
  }
  const end = r.uint32() + r.pos;
  while (r.pos < end) out.push(r.double());
}

function readFloats(r: BinaryReader, wire: WireType, out: number[]): void {
  if (wire === WireType.Bit32) {
    out.push(r.float());
    return;
  }
  const end = r.uint32() + r.pos;
  while (r.pos < end) out.push(r.float());
}
