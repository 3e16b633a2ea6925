/** Conversions between host tensors and onnxruntime tensors (zero-copy where the types allow). */
import ort from 'onnxruntime-node';
import { TlabError } from '../../util/errors.ts';
import type { DType } from '../dtype.ts';
import type { HostTensor } from '../tensor.ts';

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

export function toOrtTensor(name: string, t: HostTensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) {
    throw new TlabError(
      `input '${name}': ${t.dtype} cannot cross the onnxruntime boundary; cast it inside the graph`,
    );
  }
  return new ort.Tensor(type, t.data as ort.Tensor.DataType, t.shape as number[]);
}

export function fromOrtTensor(name: string, t: ort.Tensor): HostTensor {
  const dtype = (Object.keys(ORT_TYPE) as DType[]).find((d) => ORT_TYPE[d] === t.type);
  if (!dtype) throw new TlabError(`output '${name}' has unsupported onnxruntime type ${t.type}`);
  return { dtype, shape: [...t.dims], data: t.data as HostTensor['data'] };
}
