/**
 * The weight files of a Hugging Face model folder: `model.safetensors`, or `model.safetensors.index.json`
 * ({metadata: {total_size}, weight_map: {tensor: shard}}) with its shards. Headers are read first so callers can
 * validate names and shapes before any data is loaded.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { byteSize } from '../../engine/dtype.ts';
import {
  readSafetensors,
  readSafetensorsHeader,
  type SafetensorsEntry,
  writeSafetensors,
} from '../../engine/io/safetensors.ts';
import { type HostTensor, numel } from '../../engine/tensor.ts';
import { writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { describeJson, isJsonObject, readJsonObject } from '../../util/json-file.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** Where each tensor of the folder lives, with its header entry. */
export interface WeightIndex {
  /** The file that names the weights in errors: model.safetensors, or the index for sharded folders. */
  readonly source: string;
  readonly entries: ReadonlyMap<string, SafetensorsEntry & { readonly file: string }>;
}

/** Reads the headers of a folder's weights (single file or sharded index). */
export function readWeightIndex(dir: string): WeightIndex {
  const single = join(dir, SINGLE_FILE);
  if (existsSync(single)) {
    const header = readSafetensorsHeader(single);
    const entries = new Map<string, SafetensorsEntry & { file: string }>();
    for (const [name, e] of header.entries) entries.set(name, { ...e, file: single });
    return { source: single, entries };
  }
  const indexPath = join(dir, INDEX_FILE);
  if (!existsSync(indexPath)) {
    const others = existsSync(dir)
      ? readdirSync(dir).filter((f) => /\.(bin|pt|pth|ckpt|h5|msgpack|gguf)$/.test(f))
      : [];
    throw new TlabError(
      `${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}`,
      others.length
        ? `found ${others.join(', ')}: only safetensors weights are read; convert them with transformers' save_pretrained(safe_serialization=True)`
        : undefined,
    );
  }
  const index = readJsonObject(indexPath);
  const map = index.weight_map;
  if (!isJsonObject(map))
    throw new TlabError(
      `${indexPath}: weight_map: expected an object of tensor → file, found ${describeJson(map)}`,
    );
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\'))
      throw new TlabError(
        `${indexPath}: weight_map['${name}']: expected a file name in the folder, found ${describeJson(file)}`,
      );
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file)!.push(name);
  }
  const entries = new Map<string, SafetensorsEntry & { file: string }>();
  for (const [file, names] of byFile) {
    const path = join(dir, file);
    if (!existsSync(path))
      throw new TlabError(
        `${indexPath}: weight_map['${names[0]}']: shard '${file}' does not exist (${names.length} tensors point to it)`,
      );
    const header = readSafetensorsHeader(path);
    for (const name of names) {
      const e = header.entries.get(name);
      if (!e) throw new TlabError(`${indexPath}: weight_map['${name}']: tensor not found in shard ${path}`);
      entries.set(name, { ...e, file: path });
    }
  }
  return { source: indexPath, entries };
}

/** Loads the named tensors, one read pass per file. */
export function readWeights(index: WeightIndex, names: Iterable<string>): Map<string, HostTensor> {
  const byFile = new Map<string, string[]>();
  for (const name of names) {
    const e = index.entries.get(name);
    if (!e) throw new TlabError(`${index.source}: no tensor named '${name}'`);
    if (!byFile.has(e.file)) byFile.set(e.file, []);
    byFile.get(e.file)!.push(name);
  }
  const out = new Map<string, HostTensor>();
  for (const [file, list] of byFile) for (const [k, v] of readSafetensors(file, list)) out.set(k, v);
  return out;
}

/** Hugging Face's default shard limit (save_pretrained's max_shard_size="5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/**
 * Writes tensors as model.safetensors, or as model-0000i-of-0000n.safetensors shards with an index when they
 * exceed `maxShardBytes` (tensors kept whole, in name order). Returns the files written.
 */
export function writeWeights(
  dir: string,
  tensors: ReadonlyMap<string, HostTensor>,
  maxShardBytes = DEFAULT_MAX_SHARD_BYTES,
): string[] {
  const names = [...tensors.keys()].sort();
  const size = (n: string) => numel(tensors.get(n)!.shape) * byteSize(tensors.get(n)!.dtype);
  const total = names.reduce((s, n) => s + size(n), 0);
  const metadata = { format: 'pt' };
  if (total <= maxShardBytes) {
    writeSafetensors(join(dir, SINGLE_FILE), pick(tensors, names), metadata);
    return [SINGLE_FILE];
  }
  const shards: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const n of names) {
    if (current.length && bytes + size(n) > maxShardBytes) {
      shards.push(current);
      current = [];
      bytes = 0;
    }
    current.push(n);
    bytes += size(n);
  }
  if (current.length) shards.push(current);
  const pad = (i: number) => String(i).padStart(5, '0');
  const files = shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    writeSafetensors(join(dir, files[i]), pick(tensors, shard), metadata);
    for (const n of shard) weightMap[n] = files[i];
  });
  writeJsonAtomic(join(dir, INDEX_FILE), { metadata: { total_size: total }, weight_map: weightMap });
  return [...files, INDEX_FILE];
}

function pick(tensors: ReadonlyMap<string, HostTensor>, names: readonly string[]): Map<string, HostTensor> {
  return new Map(names.map((n) => [n, tensors.get(n)!]));
}

/**
 * Removes weight files of an earlier save that are not in `keep` (a single file replaced by shards or the other
 * way round), so transformers never picks up stale weights.
 */
export function removeStaleWeights(dir: string, keep: readonly string[]): void {
  for (const f of readdirSync(dir))
    if ((SHARD_PATTERN.test(f) || f === INDEX_FILE || f === SINGLE_FILE) && !keep.includes(f))
      rmSync(join(dir, f), { force: true });
}
