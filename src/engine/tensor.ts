import { TlabError } from '../util/errors.ts';
import { bf16BitsToF32, byteSize, type DType, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from './dtype.ts';

/** Typed array holding a tensor's elements: float16/bfloat16 as raw Uint16 bits, bool as 0/1 bytes. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array;

/** A concrete tensor in host memory: row-major, shape and dtype explicit. */
export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function allocData(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
  }
}

/** Checks that data length and typed-array kind match dtype and shape; names the tensor on failure. */
export function hostTensor(
  dtype: DType,
  shape: readonly number[],
  data: TensorData,
  name = 'tensor',
): HostTensor {
  const n = numel(shape);
  if (data.length !== n) {
    throw new TlabError(
      `${name}: data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`,
    );
  }
  const expected = allocData(dtype, 0).constructor;
  if (data.constructor !== expected) {
    throw new TlabError(`${name}: dtype ${dtype} needs a ${expected.name}, got a ${data.constructor.name}`);
  }
  return { dtype, shape: [...shape], data };
}

export function zeros(dtype: DType, shape: readonly number[]): HostTensor {
  return { dtype, shape: [...shape], data: allocData(dtype, numel(shape)) };
}

export function fromFloat32(shape: readonly number[], values: ArrayLike<number>): HostTensor {
  return hostTensor('float32', shape, Float32Array.from(values));
}

export function fromInt64(shape: readonly number[], values: ArrayLike<number>): HostTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return hostTensor('int64', shape, data);
}

/** The tensor's bytes as a little-endian view (no copy). */
export function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Builds a tensor from little-endian bytes, copying into an aligned buffer. */
export function tensorFromBytes(
  dtype: DType,
  shape: readonly number[],
  bytes: Uint8Array,
  name = 'tensor',
): HostTensor {
  const n = numel(shape);
  if (bytes.byteLength !== n * byteSize(dtype)) {
    throw new TlabError(
      `${name}: ${bytes.byteLength} bytes do not hold a ${dtype} tensor of shape [${shape.join(', ')}] (${n * byteSize(dtype)} bytes)`,
    );
  }
  const data = allocData(dtype, n);
  new Uint8Array(data.buffer).set(bytes);
  return { dtype, shape: [...shape], data };
}

/** Converts any numeric tensor to float32 (decoding float16/bfloat16 bits); shares memory when already float32. */
export function toFloat32(t: HostTensor): HostTensor {
  if (t.dtype === 'float32') return t;
  return { dtype: 'float32', shape: t.shape, data: convertData(t, Float32Array) };
}

/** Converts any numeric tensor to float64 (decoding float16/bfloat16 bits). */
export function toFloat64(t: HostTensor): HostTensor {
  if (t.dtype === 'float64') return t;
  return { dtype: 'float64', shape: t.shape, data: convertData(t, Float64Array) };
}

function convertData<T extends Float32Array | Float64Array>(t: HostTensor, Ctor: { new (n: number): T }): T {
  const n = t.data.length;
  const out = new Ctor(n);
  const src = t.data;
  if (t.dtype === 'float16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32(src[i] as number);
  else if (t.dtype === 'bfloat16') for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(src[i] as number);
  else if (src instanceof BigInt64Array) for (let i = 0; i < n; i++) out[i] = Number(src[i]);
  else for (let i = 0; i < n; i++) out[i] = src[i] as number;
  return out;
}

/** Encodes a float tensor into float16 or bfloat16 storage (round to nearest even). */
export function toHalf(t: HostTensor, dtype: 'float16' | 'bfloat16'): HostTensor {
  if (t.dtype === dtype) return t;
  const src = toFloat32(t).data as Float32Array;
  const out = new Uint16Array(src.length);
  const enc = dtype === 'float16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < src.length; i++) out[i] = enc(src[i]);
  return { dtype, shape: t.shape, data: out };
}
