/**
 * What every dataset source offers the task builder: named splits with known row counts, the columns, and
 * rows streamed in index order (optionally only the selected ones). Rows are plain objects whose values may
 * be strings, numbers, booleans, bigints, null, byte arrays, image structs `{bytes, path}`, lists or objects.
 */
export type SourceMode = 'streaming' | 'cached';

export type SourceRow = Record<string, unknown>;

export interface SourceSplit {
  name: string;
  numRows: number;
}

/** One row with where it came from, so errors and metadata can point back at the raw data. */
export interface SourceRecord {
  /** Index within the source split (all shards concatenated). */
  index: number;
  row: SourceRow;
  /** File (relative to the dataset root) and row within that file, when the source is made of files. */
  file?: string;
  fileRow?: number;
}

/** A file a source read, with its content hash: the manifest's fingerprint of the raw data. */
export interface SourceFileFingerprint {
  path: string;
  bytes: number;
  sha256: string;
}

export interface SourceFingerprint {
  kind: string;
  /** The dataset as the task named it (`org/name`, a path relative to the config, `synthetic:grid-world`). */
  dataset: string;
  /** Hub commit (or a generator version) when one applies. */
  revision?: string;
  /** Hugging Face config (subset) name, when one was chosen. */
  subset?: string;
  files: SourceFileFingerprint[];
}

/**
 * Column roles and prompts a source can suggest (synthetic generators and image folders know their own);
 * the task config overrides any of them.
 */
export interface TaskDefaults {
  system_prompt?: string;
  user_prompt?: string;
  user_text_column?: string;
  image_column?: string | string[];
  assistant_text_column?: string;
  label_column?: string;
  uid_column?: string;
  grader?: string;
  metadata_columns?: string[];
}

export interface DataSource {
  /** Human-readable name for messages (path or dataset id). */
  readonly description: string;
  readonly splits: SourceSplit[];
  readonly columns: string[];
  /** Class names when the source knows them (image-folder classes, ClassLabel features, generators). */
  readonly labels?: string[];
  /** For integer ClassLabel columns: column → class names, so labels can be written as names. */
  readonly classLabels?: Record<string, string[]>;
  readonly defaults?: TaskDefaults;
  /** Extra facts for the manifest (generator name, version and parameters). */
  readonly details?: Record<string, unknown>;
  /**
   * Rows of a split in index order. With `selected`, only rows whose entry is non-zero are produced, and a
   * file-backed source skips the byte ranges that hold none.
   */
  rows(split: string, selected?: Uint8Array): AsyncIterable<SourceRecord>;
  /** Content hashes of the files read (computed lazily: hashing a big dataset takes a while). */
  fingerprint(): Promise<SourceFingerprint>;
  /** Base folder for image paths stored as strings relative to the dataset. */
  readonly root?: string;
  close(): Promise<void>;
}

/** Per-file readers that a tabular source concatenates into splits. */
export interface FileReader {
  /** Path relative to the dataset root (for messages and the manifest). */
  readonly displayPath: string;
  readonly absolutePath: string;
  numRows(): number;
  columns(): string[];
  /** Rows of this file in order; `selected(i)` filters by row index within the file. */
  rows(
    selected?: (row: number) => boolean,
    hasAny?: (start: number, end: number) => boolean,
  ): AsyncIterable<SourceRecordInFile>;
  close(): Promise<void>;
}

export interface SourceRecordInFile {
  fileRow: number;
  row: SourceRow;
}
