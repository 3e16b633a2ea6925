/**
 * One Parquet file as rows. Streaming mode reads the footer first, then one row group at a time (only the
 * groups that hold selected rows, only the byte ranges hyparquet asks for), so memory is bounded by a row
 * group. Cached mode reads the whole file once and decodes every row up front (faster, memory ~ file).
 */
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { type AsyncBuffer, type FileMetaData, parquetMetadataAsync, parquetRead } from 'hyparquet';
import { TlabError } from '../../util/errors.ts';
import type { FileReader, SourceMode, SourceRecordInFile, SourceRow } from './types.ts';

/** An AsyncBuffer over an open file descriptor: each slice is one positioned read. */
export async function fileAsyncBuffer(path: string): Promise<{ buffer: AsyncBuffer; handle: FileHandle }> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  const buffer: AsyncBuffer = {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? size, size);
      const out = new ArrayBuffer(Math.max(0, stop - start));
      const view = new Uint8Array(out);
      let done = 0;
      while (done < view.length) {
        const { bytesRead } = await handle.read(view, done, view.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return out;
    },
  };
  return { buffer, handle };
}

/** Hugging Face `datasets` stores its feature types in the footer; we use ClassLabel names and Image columns. */
export interface HfFeatures {
  classLabels: Record<string, string[]>;
  imageColumns: string[];
}

export function hfFeatures(metadata: FileMetaData): HfFeatures {
  const out: HfFeatures = { classLabels: {}, imageColumns: [] };
  const entry = metadata.key_value_metadata?.find((kv) => kv.key === 'huggingface');
  if (!entry?.value) return out;
  try {
    const features = (JSON.parse(entry.value) as { info?: { features?: Record<string, unknown> } }).info
      ?.features;
    for (const [name, feature] of Object.entries(features ?? {})) {
      const f = feature as { _type?: string; names?: unknown };
      if (f._type === 'ClassLabel' && Array.isArray(f.names)) out.classLabels[name] = f.names.map(String);
      if (f._type === 'Image') out.imageColumns.push(name);
    }
  } catch {
    // A malformed features blob only loses hints, never data.
  }
  return out;
}

export class ParquetFileReader implements FileReader {
  private cachedRows: SourceRow[] | undefined;

  private constructor(
    readonly displayPath: string,
    readonly absolutePath: string,
    private readonly file: AsyncBuffer,
    readonly metadata: FileMetaData,
    private readonly mode: SourceMode,
    private readonly handle: FileHandle | undefined,
  ) {}

  /** Opens a local file (`path`) or any AsyncBuffer (a remote file read with HTTP ranges). */
  static async open(
    displayPath: string,
    absolutePath: string,
    mode: SourceMode,
    remote?: AsyncBuffer,
  ): Promise<ParquetFileReader> {
    let file: AsyncBuffer;
    let handle: FileHandle | undefined;
    try {
      if (remote) file = remote;
      else if (mode === 'cached') {
        const bytes = await readFile(absolutePath);
        file = {
          byteLength: bytes.byteLength,
          slice: (s, e) =>
            bytes.buffer.slice(bytes.byteOffset + s, bytes.byteOffset + (e ?? bytes.byteLength)),
        };
      } else ({ buffer: file, handle } = await fileAsyncBuffer(absolutePath));
    } catch (error) {
      throw new TlabError(`${displayPath}: cannot read (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(file);
    } catch (error) {
      await handle?.close();
      throw corrupt(displayPath, error);
    }
    return new ParquetFileReader(displayPath, absolutePath, file, metadata, mode, handle);
  }

  numRows(): number {
    return Number(this.metadata.num_rows);
  }

  columns(): string[] {
    const root = this.metadata.schema[0];
    const names: string[] = [];
    // Top-level fields: walk the flattened schema, skipping each group's descendants.
    let i = 1;
    const skip = (index: number): number => {
      const el = this.metadata.schema[index];
      let next = index + 1;
      for (let c = 0; c < (el.num_children ?? 0); c++) next = skip(next);
      return next;
    };
    for (let c = 0; c < (root.num_children ?? 0); c++) {
      names.push(this.metadata.schema[i].name);
      i = skip(i);
    }
    return names;
  }

  async *rows(
    selected?: (row: number) => boolean,
    hasAny?: (start: number, end: number) => boolean,
  ): AsyncIterable<SourceRecordInFile> {
    if (this.mode === 'cached') {
      this.cachedRows ??= await this.read(0, this.numRows());
      for (let r = 0; r < this.cachedRows.length; r++)
        if (!selected || selected(r)) yield { fileRow: r, row: this.cachedRows[r] };
      return;
    }
    let groupStart = 0;
    for (const group of this.metadata.row_groups) {
      const groupEnd = groupStart + Number(group.num_rows);
      if (!hasAny || hasAny(groupStart, groupEnd)) {
        // Narrow to the first..last selected row of the group so fewer pages are decoded.
        let start = groupStart;
        let end = groupEnd;
        if (selected) {
          while (start < end && !selected(start)) start++;
          while (end > start && !selected(end - 1)) end--;
        }
        if (start < end) {
          const rows = await this.read(start, end);
          for (let k = 0; k < rows.length; k++) {
            const r = start + k;
            if (!selected || selected(r)) yield { fileRow: r, row: rows[k] };
          }
        }
      }
      groupStart = groupEnd;
    }
  }

  private async read(rowStart: number, rowEnd: number): Promise<SourceRow[]> {
    let out: SourceRow[] = [];
    try {
      await parquetRead({
        file: this.file,
        metadata: this.metadata,
        rowStart,
        rowEnd,
        rowFormat: 'object',
        utf8: false, // binary columns (image bytes) stay bytes; UTF8-annotated columns are still strings
        onComplete: (rows) => {
          out = rows as SourceRow[];
        },
      });
    } catch (error) {
      throw corrupt(this.displayPath, error, `rows ${rowStart}..${rowEnd - 1}`);
    }
    return out;
  }

  async close(): Promise<void> {
    this.cachedRows = undefined;
    await this.handle?.close();
  }
}

function corrupt(path: string, error: unknown, where?: string): TlabError {
  const message = error instanceof Error ? error.message : String(error);
  return new TlabError(
    `${path}: not a readable Parquet file${where ? ` (${where})` : ''}: ${message}`,
    'the file may be truncated or corrupt; re-download it or rebuild it',
  );
}
