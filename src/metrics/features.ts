/**
 * Where features (and labels, source probabilities) come from. Files users bring: `.npy`, `.safetensors`
 * (`file.safetensors#tensor` when it holds several) and Parquet (`file.parquet#column` for a list-valued column,
 * `#a,b,c` for scalar columns, `#prefix*` for every column starting with prefix). Features from this project's
 * models come through `ModelFeatureSource`, which the model layer implements.
 */
import { readFileSync } from 'node:fs';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { readSafetensors, readSafetensorsHeader } from '../engine/io/safetensors.ts';
import { toFloat64 } from '../engine/tensor.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import { TlabError, validChoices } from '../util/errors.ts';
import { readNpy } from './io/npy.ts';

/** How a transformer's token states become one vector per example. */
export type Pooling = 'pooled' | 'cls' | 'mean' | 'last';

export interface FeatureRequest {
  pooling: Pooling;
  /** Hidden-state layer; negative counts from the end (−1 = last layer). */
  layer: number;
  batchSize?: number;
}

/** Implemented by the model layer: turns examples into an N×D float32 feature matrix. */
export interface ModelFeatureSource<Example> {
  readonly name: string;
  extract(
    examples: readonly Example[],
    request: FeatureRequest,
  ): Promise<{ rows: number; cols: number; data: Float32Array }>;
}

/** Adapts a model feature source's output to the float64 matrices the estimators take. */
export async function featuresFromModel<E>(
  source: ModelFeatureSource<E>,
  examples: readonly E[],
  request: FeatureRequest,
): Promise<Matrix> {
  const out = await source.extract(examples, request);
  if (out.rows !== examples.length)
    throw new TlabError(`${source.name}: returned ${out.rows} feature rows for ${examples.length} examples`);
  return matrix(out.rows, out.cols, out.data);
}

interface FileSpec {
  path: string;
  selector: string | undefined;
}

function splitSpec(spec: string): FileSpec {
  const hash = spec.lastIndexOf('#');
  if (hash > 0 && !spec.slice(hash).includes('/'))
    return { path: spec.slice(0, hash), selector: spec.slice(hash + 1) };
  return { path: spec, selector: undefined };
}

/** A numeric array file as a flat float64 array and its shape. */
export async function readArrayFile(
  spec: string,
): Promise<{ shape: number[]; data: Float64Array; name: string }> {
  const { path, selector } = splitSpec(spec);
  if (path.endsWith('.npy')) {
    const a = readNpy(path);
    if (a.dtype === 'f2') throw new TlabError(`${path}: float16 .npy is not supported; save as float32`);
    const data =
      a.data instanceof BigInt64Array
        ? Float64Array.from(a.data, Number)
        : Float64Array.from(a.data as ArrayLike<number>);
    return { shape: a.shape, data, name: path };
  }
  if (path.endsWith('.safetensors')) {
    const header = readSafetensorsHeader(path);
    const names = [...header.entries.keys()];
    let tensor = selector;
    if (tensor === undefined) {
      if (names.length !== 1)
        throw new TlabError(
          `${path}: holds ${names.length} tensors; name one as ${path}#<tensor>`,
          `tensors: ${validChoices(names)}`,
        );
      tensor = names[0];
    }
    if (!header.entries.has(tensor))
      throw new TlabError(`${path}: no tensor '${tensor}'`, `tensors: ${validChoices(names)}`);
    const t = toFloat64(readSafetensors(path, [tensor]).get(tensor) as never);
    return { shape: [...t.shape], data: t.data as Float64Array, name: `${path}#${tensor}` };
  }
  if (path.endsWith('.parquet')) return readParquetColumns(path, selector);
  throw new TlabError(`${spec}: unsupported file type; use .npy, .safetensors or .parquet#column`);
}

async function readParquetColumns(
  path: string,
  selector: string | undefined,
): Promise<{ shape: number[]; data: Float64Array; name: string }> {
  let buf: ArrayBuffer;
  try {
    const b = readFileSync(path);
    buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  } catch (error) {
    throw new TlabError(
      `${path}: cannot read Parquet file (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  const metadata = parquetMetadata(buf);
  const all = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!selector)
    throw new TlabError(`${path}: name the column(s) as ${path}#<column>`, `columns: ${validChoices(all)}`);
  const columns = selector.endsWith('*')
    ? all.filter((c) => c.startsWith(selector.slice(0, -1)))
    : selector.split(',').map((s) => s.trim());
  for (const c of columns)
    if (!all.includes(c)) throw new TlabError(`${path}: no column '${c}'`, `columns: ${validChoices(all)}`);
  if (columns.length === 0)
    throw new TlabError(`${path}: no column matches '${selector}'`, `columns: ${validChoices(all)}`);
  const rows = await parquetReadObjects({ file: buf, columns, metadata });
  const n = rows.length;
  const toNum = (v: unknown, r: number, c: string): number => {
    const x = typeof v === 'bigint' ? Number(v) : v;
    if (typeof x !== 'number')
      throw new TlabError(`${path}: column ${c} row ${r} is not a number (${typeof v})`);
    return x;
  };
  if (columns.length === 1 && n > 0 && Array.isArray(rows[0][columns[0]])) {
    const c = columns[0];
    const dim = (rows[0][c] as unknown[]).length;
    const data = new Float64Array(n * dim);
    rows.forEach((row, r) => {
      const v = row[c] as unknown[];
      if (!Array.isArray(v) || v.length !== dim)
        throw new TlabError(
          `${path}: column ${c} row ${r} has ${Array.isArray(v) ? v.length : 'no'} values, expected ${dim}`,
        );
      for (let j = 0; j < dim; j++) data[r * dim + j] = toNum(v[j], r, c);
    });
    return { shape: [n, dim], data, name: `${path}#${c}` };
  }
  const data = new Float64Array(n * columns.length);
  rows.forEach((row, r) => {
    columns.forEach((c, j) => {
      data[r * columns.length + j] = toNum(row[c], r, c);
    });
  });
  const shape = columns.length === 1 ? [n] : [n, columns.length];
  return { shape, data, name: `${path}#${selector}` };
}

/** An N×D matrix from a file spec; a 1-D array is rejected (features need two dimensions). */
export async function readMatrixFile(spec: string): Promise<Matrix & { name: string }> {
  const a = await readArrayFile(spec);
  if (a.shape.length !== 2)
    throw new TlabError(
      `${a.name}: expected a 2-D array (samples × features), got shape (${a.shape.join(', ')})`,
    );
  return { ...matrix(a.shape[0], a.shape[1], a.data), name: a.name };
}

/** A label vector (N, or N×1) from a file spec. */
export async function readLabelFile(spec: string): Promise<{ labels: Float64Array; name: string }> {
  const a = await readArrayFile(spec);
  if (!(a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1)))
    throw new TlabError(`${a.name}: expected a 1-D label array, got shape (${a.shape.join(', ')})`);
  return { labels: a.data, name: a.name };
}
