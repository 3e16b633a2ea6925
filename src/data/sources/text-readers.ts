/**
 * JSONL (or a .json array) and CSV files as rows. Streaming mode counts rows in one pass at open and parses
 * line by line afterwards; cached mode parses the whole file once and keeps the rows.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { csvRecords } from '../../util/csv.ts';
import { TlabError } from '../../util/errors.ts';
import type { FileReader, SourceMode, SourceRecordInFile, SourceRow } from './types.ts';

export { csvRecords };

/** Yields the file's text in chunks (UTF-8 decoded across chunk boundaries), without a byte-order mark. */
async function* textChunks(path: string): AsyncIterable<string> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let first = true;
  for await (const chunk of stream) {
    yield first ? stripBom(chunk as string) : (chunk as string);
    first = false;
  }
}

/** Text without a leading UTF-8 byte-order mark (editors on Windows write one; JSON.parse rejects it). */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Non-empty lines with their 1-based line numbers. */
async function* lines(path: string): AsyncIterable<{ line: number; text: string }> {
  let rest = '';
  let line = 0;
  for await (const chunk of textChunks(path)) {
    rest += chunk;
    let from = 0;
    let nl = rest.indexOf('\n');
    while (nl >= 0) {
      line++;
      const text = rest.slice(from, nl).replace(/\r$/, '');
      if (text.trim()) yield { line, text };
      from = nl + 1;
      nl = rest.indexOf('\n', from);
    }
    rest = rest.slice(from);
  }
  if (rest.trim()) yield { line: line + 1, text: rest.replace(/\r$/, '') };
}

abstract class TextFileReader implements FileReader {
  protected count = 0;
  protected cached: SourceRow[] | undefined;
  protected columnNames: string[] = [];

  constructor(
    readonly displayPath: string,
    readonly absolutePath: string,
    protected readonly mode: SourceMode,
  ) {}

  numRows(): number {
    return this.count;
  }

  columns(): string[] {
    return this.columnNames;
  }

  protected abstract stream(): AsyncIterable<SourceRow>;

  async *rows(selected?: (row: number) => boolean): AsyncIterable<SourceRecordInFile> {
    if (this.cached) {
      for (let r = 0; r < this.cached.length; r++)
        if (!selected || selected(r)) yield { fileRow: r, row: this.cached[r] };
      return;
    }
    let r = 0;
    for await (const row of this.stream()) {
      if (!selected || selected(r)) yield { fileRow: r, row };
      r++;
    }
  }

  /** Reads once: counts rows and collects column names (all rows kept in cached mode). */
  protected async scan(): Promise<void> {
    const names = new Set<string>();
    const keep: SourceRow[] = [];
    for await (const row of this.stream()) {
      this.count++;
      for (const key of Object.keys(row)) names.add(key);
      if (this.mode === 'cached') keep.push(row);
    }
    this.columnNames = [...names];
    if (this.mode === 'cached') this.cached = keep;
  }

  async close(): Promise<void> {
    this.cached = undefined;
  }
}

export class JsonlFileReader extends TextFileReader {
  private arrayRows: SourceRow[] | undefined;

  static async open(displayPath: string, absolutePath: string, mode: SourceMode): Promise<JsonlFileReader> {
    const reader = new JsonlFileReader(displayPath, absolutePath, mode);
    // A .json file may hold one array of objects rather than lines: that needs the whole file anyway.
    if (absolutePath.endsWith('.json')) {
      const text = stripBom(
        await readFile(absolutePath, 'utf8').catch((e) => {
          throw new TlabError(`${displayPath}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
        }),
      );
      if (text.trimStart().startsWith('[')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (error) {
          throw new TlabError(`${displayPath}: not valid JSON: ${(error as Error).message}`);
        }
        reader.arrayRows = (parsed as unknown[]).map((row, i) => asObject(row, displayPath, `item ${i}`));
      }
    }
    await reader.scan();
    return reader;
  }

  protected async *stream(): AsyncIterable<SourceRow> {
    if (this.arrayRows) {
      yield* this.arrayRows;
      return;
    }
    for await (const { line, text } of lines(this.absolutePath)) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new TlabError(`${this.displayPath}:${line}: not valid JSON: ${(error as Error).message}`);
      }
      yield asObject(value, this.displayPath, `line ${line}`);
    }
  }
}

function asObject(value: unknown, file: string, where: string): SourceRow {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new TlabError(
      `${file}: ${where}: expected a JSON object per row, got ${JSON.stringify(value)?.slice(0, 60)}`,
    );
  return value as SourceRow;
}

export class CsvFileReader extends TextFileReader {
  static async open(displayPath: string, absolutePath: string, mode: SourceMode): Promise<CsvFileReader> {
    const reader = new CsvFileReader(displayPath, absolutePath, mode);
    try {
      await reader.scan();
    } catch (error) {
      if (error instanceof TlabError) throw error;
      throw new TlabError(`${displayPath}: cannot read (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    return reader;
  }

  protected async *stream(): AsyncIterable<SourceRow> {
    let header: string[] | undefined;
    let record = 0;
    for await (const fields of csvRecords(textChunks(this.absolutePath), this.displayPath)) {
      record++;
      if (!header) {
        header = fields.map((f, i) => f || `column_${i}`);
        continue;
      }
      if (fields.length === 1 && fields[0] === '') continue; // blank line
      if (fields.length !== header.length)
        throw new TlabError(
          `${this.displayPath}: record ${record}: has ${fields.length} fields, the header has ${header.length}`,
        );
      const row: SourceRow = {};
      for (let i = 0; i < header.length; i++) row[header[i]] = fields[i];
      yield row;
    }
  }
}
