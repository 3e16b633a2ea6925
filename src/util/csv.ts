/**
 * RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines; CRLF and LF line ends; a UTF-8
 * byte-order mark at the start is dropped. One incremental parser serves streamed files (data sources) and whole
 * small tables (accuracy tables). A quote that is never closed is an error naming the file and the line it opened
 * on, because otherwise the rest of the file would silently become one field.
 */
import { TlabError } from './errors.ts';

export class CsvParser {
  private fields: string[] = [];
  private field = '';
  private quoted = false;
  private afterQuote = false;
  private any = false;
  private started = false;
  private line = 1;
  private quoteLine = 0;

  /** `name` is the file shown in errors. */
  constructor(private readonly name = 'CSV') {}

  /** Feeds a chunk of text; returns the records it completed. */
  push(chunk: string): string[][] {
    const out: string[][] = [];
    let i = 0;
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) i = 1;
    }
    for (; i < chunk.length; i++) {
      const ch = chunk[i];
      this.any = true;
      if (ch === '\n') this.line++;
      if (this.quoted) {
        if (ch === '"') {
          this.quoted = false;
          this.afterQuote = true;
        } else this.field += ch;
        continue;
      }
      if (ch === '"') {
        if (this.afterQuote)
          this.field += '"'; // "" inside quotes
        else this.quoteLine = this.line;
        this.quoted = true;
        this.afterQuote = false;
      } else if (ch === ',') {
        this.fields.push(this.field);
        this.field = '';
        this.afterQuote = false;
      } else if (ch === '\n') {
        this.fields.push(
          this.field.endsWith('\r') && !this.afterQuote ? this.field.slice(0, -1) : this.field,
        );
        out.push(this.fields);
        this.fields = [];
        this.field = '';
        this.afterQuote = false;
        this.any = false;
      } else if (ch === '\r' && this.afterQuote) {
        // CR after a closing quote: part of CRLF
      } else {
        this.field += ch;
        this.afterQuote = false;
      }
    }
    return out;
  }

  /** Ends the input: the last record (when the text does not end with a newline), or an unclosed-quote error. */
  end(): string[][] {
    if (this.quoted)
      throw new TlabError(
        `${this.name}: line ${this.quoteLine}: a quoted field opened on this line is never closed`,
        'close it with a double quote ("); a quote inside a quoted field is written as two ("")',
      );
    if (!this.any) return [];
    this.fields.push(this.field);
    this.any = false;
    return [this.fields];
  }
}

/** Records of streamed text chunks. */
export async function* csvRecords(chunks: AsyncIterable<string>, name = 'CSV'): AsyncIterable<string[]> {
  const parser = new CsvParser(name);
  for await (const chunk of chunks) yield* parser.push(chunk);
  yield* parser.end();
}

/** Records of a whole text. */
export function parseCsv(text: string, name = 'CSV'): string[][] {
  const parser = new CsvParser(name);
  return [...parser.push(text), ...parser.end()];
}
