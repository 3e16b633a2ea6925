/**
 * safetensors read/write: 8-byte little-endian header length, a JSON header of {name: {dtype, shape,
 * data_offsets}} (offsets relative to the data section), then the tensor bytes. Reads use positioned reads per
 * tensor, so shards over 2 GiB work and only requested tensors are loaded.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { writeChunksAtomic } from '../../util/atomic-write.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import type { DType } from '../dtype.ts';
import { byteSize } from '../dtype.ts';
import { type HostTensor, numel, tensorBytes, tensorFromBytes } from '../tensor.ts';

const ST_TO_DTYPE: Record<string, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const DTYPE_TO_ST: Record<DType, string> = Object.fromEntries(
  Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k]),
) as Record<DType, string>;

/** Largest header the reference implementation accepts. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset in the file and byte length. */
  readonly offset: number;
  readonly length: number;
}

export interface SafetensorsHeader {
  readonly path: string;
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
}

function fail(path: string, what: string): never {
  throw new TlabError(`${path}: not a valid safetensors file: ${what}`);
}

/** Reads and validates the header only. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new TlabError(
      `${path}: cannot open safetensors file (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  try {
    return parseHeader(path, fd);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(path: string, fd: number): SafetensorsHeader {
  const size = fstatSync(fd).size;
  if (size < 8) fail(path, `file is ${size} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES)
    fail(path, `header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes`);
  if (8 + headerLen > size)
    fail(path, `header length ${headerLen} runs past the end of the ${size}-byte file (truncated?)`);
  const headerBuf = Buffer.alloc(headerLen);
  readSync(fd, headerBuf, 0, headerLen, 8);
  let json: unknown;
  try {
    json = JSON.parse(headerBuf.toString('utf8'));
  } catch (error) {
    fail(path, `header is not JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    fail(path, 'header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) fail(path, '__metadata__ must be an object of strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) fail(path, `tensor '${name}' has no entry object`);
    const dtype = ST_TO_DTYPE[String(e.dtype)];
    if (!dtype)
      fail(
        path,
        `tensor '${name}' has dtype ${String(e.dtype)}; supported: ${validChoices(Object.keys(ST_TO_DTYPE))}`,
      );
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(path, `tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    }
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isInteger(o) && o >= 0) ||
      offs[1] < offs[0]
    ) {
      fail(path, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const shape = e.shape as number[];
    const [begin, end] = offs as [number, number];
    const expected = numel(shape) * byteSize(dtype);
    if (end - begin !== expected) {
      fail(
        path,
        `tensor '${name}' (${e.dtype} [${shape.join(', ')}]) needs ${expected} bytes but data_offsets span ${end - begin}`,
      );
    }
    if (end > dataLen)
      fail(
        path,
        `tensor '${name}' ends at byte ${end} but the data section has ${dataLen} bytes (truncated?)`,
      );
    spans.push([begin, end, name]);
    entries.set(name, { name, dtype, shape, offset: dataStart + begin, length: end - begin });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1])
      fail(path, `tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { path, entries, metadata };
}

/**
 * Reads tensors from a safetensors file: all of them, or only `names` (a missing one is an error that lists the
 * file's tensors).
 */
export function readSafetensors(path: string, names?: Iterable<string>): Map<string, HostTensor> {
  const fd = (() => {
    try {
      return openSync(path, 'r');
    } catch (error) {
      throw new TlabError(
        `${path}: cannot open safetensors file (${(error as NodeJS.ErrnoException).code ?? error})`,
      );
    }
  })();
  try {
    const header = parseHeader(path, fd);
    const wanted = names ? [...names] : [...header.entries.keys()];
    const out = new Map<string, HostTensor>();
    for (const name of wanted) {
      const entry = header.entries.get(name);
      if (!entry) {
        throw new TlabError(
          `${path}: no tensor named '${name}'`,
          `tensors in the file: ${validChoices(header.entries.keys())}`,
        );
      }
      const bytes = new Uint8Array(entry.length);
      let done = 0;
      while (done < entry.length) {
        const n = readSync(fd, bytes, done, Math.min(entry.length - done, 1 << 30), entry.offset + done);
        if (n === 0) fail(path, `unexpected end of file while reading '${name}'`);
        done += n;
      }
      out.set(name, tensorFromBytes(entry.dtype, entry.shape, bytes, `${path}: ${name}`));
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes tensors (sorted by name, as the reference writer does) with the header padded to 8-byte alignment.
 * Written to a temporary file and renamed, so a crash never leaves a half-written checkpoint.
 */
export function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): void {
  const map: ReadonlyMap<string, HostTensor> =
    tensors instanceof Map ? tensors : new Map(Object.entries(tensors as Record<string, HostTensor>));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = map.get(name)!;
    const len = t.data.byteLength;
    if (len !== numel(t.shape) * byteSize(t.dtype)) {
      throw new TlabError(
        `${path}: tensor '${name}' holds ${len} bytes, not ${t.dtype} [${t.shape.join(', ')}]`,
      );
    }
    header[name] = { dtype: DTYPE_TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((Buffer.byteLength(json) + 8) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const lenBytes = Buffer.alloc(8);
  lenBytes.writeBigUInt64LE(BigInt(headerBytes.length));
  writeChunksAtomic(path, [lenBytes, headerBytes, ...names.map((name) => tensorBytes(map.get(name)!))]);
}
