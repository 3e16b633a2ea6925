/** Plain-data view of the ONNX ModelProto subset the engine writes and reads. */
import type { DType } from '../dtype.ts';

export interface OnnxTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Little-endian raw bytes; absent when the data lives in an external file. */
  readonly raw?: Uint8Array;
  /** External data: file relative to the model, byte offset and length. */
  readonly external?: { readonly location: string; readonly offset: number; readonly length: number };
}

export type OnnxDim = number | string;

export interface OnnxValueInfo {
  readonly name: string;
  readonly dtype?: DType;
  readonly shape?: readonly OnnxDim[];
}

export type OnnxAttr =
  | { readonly name: string; readonly kind: 'int'; readonly value: number }
  | { readonly name: string; readonly kind: 'float'; readonly value: number }
  | { readonly name: string; readonly kind: 'string'; readonly value: string }
  | { readonly name: string; readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly name: string; readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly name: string; readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly name: string; readonly kind: 'tensor'; readonly value: OnnxTensor }
  | { readonly name: string; readonly kind: 'graph'; readonly value: OnnxGraph };

export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  readonly domain?: string;
  readonly attrs?: readonly OnnxAttr[];
}

export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  readonly irVersion: number;
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly graph: OnnxGraph;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** opset 21 with IR 10: the pairing verified against onnxruntime 1.30 (see specs/ts-ecosystem.md §2.2). */
export const DEFAULT_OPSET = 21;
export const DEFAULT_IR_VERSION = 10;

export const attr = {
  int: (name: string, value: number): OnnxAttr => ({ name, kind: 'int', value }),
  float: (name: string, value: number): OnnxAttr => ({ name, kind: 'float', value }),
  string: (name: string, value: string): OnnxAttr => ({ name, kind: 'string', value }),
  ints: (name: string, value: readonly number[]): OnnxAttr => ({ name, kind: 'ints', value }),
  floats: (name: string, value: readonly number[]): OnnxAttr => ({ name, kind: 'floats', value }),
  tensor: (name: string, value: OnnxTensor): OnnxAttr => ({ name, kind: 'tensor', value }),
  graph: (name: string, value: OnnxGraph): OnnxAttr => ({ name, kind: 'graph', value }),
};
