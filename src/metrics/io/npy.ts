/**
 * NumPy .npy reader and writer (format versions 1.0–3.0): little-endian float64/float32/float16, int64/int32/
 * int16/int8, uint8/uint16/uint32 and bool, C or Fortran order. Enough to exchange features and labels with
 * Python without extra dependencies.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';

export type NpyData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

export interface NpyArray {
  /** numpy descr without byte order, e.g. 'f8', 'i8', 'b1'. */
  dtype: string;
  shape: number[];
  /** Row-major (C order) elements. */
  data: NpyData;
}

const CTORS: Record<
  string,
  { new (buf: ArrayBuffer, off?: number, len?: number): NpyData; BYTES_PER_ELEMENT: number }
> = {
  f8: Float64Array,
  f4: Float32Array,
  i8: BigInt64Array,
  i4: Int32Array,
  i2: Int16Array,
  i1: Int8Array,
  u1: Uint8Array,
  b1: Uint8Array,
  u2: Uint16Array,
  u4: Uint32Array,
  f2: Uint16Array,
};

function fail(path: string, what: string): never {
  throw new TlabError(`${path}: not a valid .npy file: ${what}`);
}

/** Parses the header dict, e.g. {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }. */
function parseHeader(path: string, text: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    fail(path, `unreadable header ${text.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(path, `bad shape (${shapeText})`);
  return { descr, fortran: fortran === 'True', shape };
}

export function parseNpy(bytes: Uint8Array, path = 'array.npy'): NpyArray {
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY')
    fail(path, 'missing \\x93NUMPY magic');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    start = 12;
  } else fail(path, `unsupported format version ${major}`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(start, start + headerLen),
  );
  const { descr, fortran, shape } = parseHeader(path, header);
  const order = descr[0];
  const code = descr.slice(1);
  if (order === '>' && code !== 'i1' && code !== 'u1' && code !== 'b1')
    fail(path, `big-endian dtype ${descr} is not supported; save with a little-endian dtype`);
  const Ctor = CTORS[code];
  if (!Ctor) fail(path, `dtype ${descr} is not supported (use float64, float32, float16 or an integer type)`);
  const count = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const nbytes = count * Ctor.BYTES_PER_ELEMENT;
  if (bytes.length < off + nbytes)
    fail(path, `data is ${bytes.length - off} bytes, shape (${shape.join(', ')}) needs ${nbytes}`);
  const buf = new Uint8Array(bytes.subarray(off, off + nbytes)).buffer; // copy: aligned, independent of Buffer pools
  let data = new Ctor(buf, 0, count);
  if (fortran && shape.length > 1) data = fortranToC(data, shape, Ctor);
  return { dtype: code, shape, data };
}

function fortranToC(
  data: NpyData,
  shape: number[],
  Ctor: { new (buf: ArrayBuffer, off?: number, len?: number): NpyData; BYTES_PER_ELEMENT: number },
): NpyData {
  const n = data.length;
  const out = new Ctor(new ArrayBuffer(n * Ctor.BYTES_PER_ELEMENT), 0, n);
  const nd = shape.length;
  const idx = new Array(nd).fill(0);
  for (let f = 0; f < n; f++) {
    // f is the Fortran linear index of idx; compute the C index
    let c = 0;
    for (let k = 0; k < nd; k++) c = c * shape[k] + idx[k];
    (out as unknown as number[])[c] = (data as unknown as number[])[f];
    for (let k = 0; k < nd; k++) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

export function readNpy(path: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new TlabError(`${path}: cannot read .npy file (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  return parseNpy(bytes, path);
}

function descrOf(data: NpyData): string {
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Uint16Array) return '<u2';
  return '<u4';
}

/** Encodes a C-order array as .npy version 1.0. */
export function encodeNpy(shape: readonly number[], data: NpyData): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descrOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = `${header}${' '.repeat(pad % 64)}\n`;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

export function writeNpy(path: string, shape: readonly number[], data: NpyData): void {
  writeFileAtomic(path, encodeNpy(shape, data));
}
