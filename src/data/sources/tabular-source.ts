/**
 * A dataset made of files: each split is a list of shards (Parquet, JSONL/JSON, CSV) read in order, with row
 * indices running across the shards.
 */
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import { sha256File } from '../hash.ts';
import { hfFeatures, ParquetFileReader } from './parquet-reader.ts';
import { CsvFileReader, JsonlFileReader } from './text-readers.ts';
import type {
  DataSource,
  FileReader,
  SourceFileFingerprint,
  SourceFingerprint,
  SourceMode,
  SourceRecord,
  SourceSplit,
} from './types.ts';

export const TABLE_EXTENSIONS = ['.parquet', '.jsonl', '.json', '.csv'];

/** A shard to open: shown as `displayPath`, read from `absolutePath`, with a known hash when the cache has one. */
export interface ShardSpec {
  displayPath: string;
  absolutePath: string;
  /** SHA-256 known without reading (hub cache blobs are named by it; the hub API reports it). */
  sha256?: string;
  bytes?: number;
  /** Opens the shard from elsewhere (HTTP range reads); default: the local file. */
  openRemote?: (mode: SourceMode) => Promise<FileReader>;
}

export async function openFileReader(shard: ShardSpec, mode: SourceMode): Promise<FileReader> {
  if (shard.openRemote) return shard.openRemote(mode);
  const ext = extname(shard.absolutePath).toLowerCase();
  if (ext === '.parquet') return ParquetFileReader.open(shard.displayPath, shard.absolutePath, mode);
  if (ext === '.jsonl' || ext === '.json')
    return JsonlFileReader.open(shard.displayPath, shard.absolutePath, mode);
  if (ext === '.csv') return CsvFileReader.open(shard.displayPath, shard.absolutePath, mode);
  throw new TlabError(
    `${shard.displayPath}: unsupported file type '${ext}'`,
    `readable: ${TABLE_EXTENSIONS.join(', ')}`,
  );
}

export class TabularSource implements DataSource {
  readonly splits: SourceSplit[];
  readonly columns: string[];
  readonly classLabels: Record<string, string[]>;
  readonly defaults: { image_column?: string | string[] };

  private constructor(
    readonly description: string,
    private readonly fingerprintBase: Omit<SourceFingerprint, 'files'>,
    private readonly shards: Map<string, { spec: ShardSpec; reader: FileReader }[]>,
    readonly root: string | undefined,
  ) {
    this.splits = [...shards].map(([name, list]) => ({
      name,
      numRows: list.reduce((n, s) => n + s.reader.numRows(), 0),
    }));
    const columns = new Set<string>();
    const classLabels: Record<string, string[]> = {};
    const imageColumns = new Set<string>();
    for (const list of shards.values())
      for (const { reader } of list) {
        for (const c of reader.columns()) columns.add(c);
        if (reader instanceof ParquetFileReader) {
          const features = hfFeatures(reader.metadata);
          Object.assign(classLabels, features.classLabels);
          for (const c of features.imageColumns) imageColumns.add(c);
        }
      }
    this.columns = [...columns];
    this.classLabels = classLabels;
    this.defaults = imageColumns.size === 1 ? { image_column: [...imageColumns][0] } : {};
  }

  static async open(
    description: string,
    fingerprint: Omit<SourceFingerprint, 'files'>,
    splits: Map<string, ShardSpec[]>,
    mode: SourceMode,
    root?: string,
  ): Promise<TabularSource> {
    const opened = new Map<string, { spec: ShardSpec; reader: FileReader }[]>();
    try {
      for (const [split, specs] of splits) {
        const list: { spec: ShardSpec; reader: FileReader }[] = [];
        opened.set(split, list);
        for (const spec of specs) list.push({ spec, reader: await openFileReader(spec, mode) });
      }
    } catch (error) {
      for (const list of opened.values()) for (const { reader } of list) await reader.close();
      throw error;
    }
    return new TabularSource(description, fingerprint, opened, root);
  }

  async *rows(split: string, selected?: Uint8Array): AsyncIterable<SourceRecord> {
    const list = this.shards.get(split);
    if (!list) throw new TlabError(`${this.description}: no split '${split}'`);
    let offset = 0;
    for (const { spec, reader } of list) {
      const n = reader.numRows();
      const base = offset;
      const want = selected ? (r: number) => selected[base + r] !== 0 : undefined;
      const hasAny = selected
        ? (start: number, end: number) => {
            for (let i = base + start; i < base + end; i++) if (selected[i] !== 0) return true;
            return false;
          }
        : undefined;
      if (!hasAny || hasAny(0, n))
        for await (const { fileRow, row } of reader.rows(want, hasAny))
          yield { index: base + fileRow, row, file: spec.displayPath, fileRow };
      offset += n;
    }
  }

  async fingerprint(): Promise<SourceFingerprint> {
    const files: SourceFileFingerprint[] = [];
    for (const list of this.shards.values())
      for (const { spec } of list) {
        const bytes = spec.bytes ?? (await stat(spec.absolutePath)).size;
        const sha256 = spec.sha256 ?? (await sha256File(spec.absolutePath));
        files.push({ path: spec.displayPath, bytes, sha256 });
      }
    return { ...this.fingerprintBase, files };
  }

  async close(): Promise<void> {
    for (const list of this.shards.values()) for (const { reader } of list) await reader.close();
  }
}
