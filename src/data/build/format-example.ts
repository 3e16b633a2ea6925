/**
 * One source row → one task example: images stored, prompts filled in, uid assigned. Errors name the source
 * file and row (and the uid when it comes from a column) so a bad record can be found in the raw data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import { canonicalJson } from '../canonical-json.ts';
import { sha256Hex } from '../hash.ts';
import type { SourceRecord } from '../sources/types.ts';
import type { ChatMessage, ContentPart, ExampleImage, ExampleMetadata } from '../task-format.ts';
import type { ImageStore } from './image-store.ts';
import { renderTemplate, valueToText } from './template.ts';

/** The column roles and prompts of a task after source defaults are filled in. */
export interface EffectiveTask {
  system_prompt?: string;
  user_prompt?: string;
  user_text_column?: string;
  image_columns: string[];
  assistant_text_column?: string;
  label_column?: string;
  uid_column?: string;
  metadata_columns?: string[];
  dedupe: boolean | string[];
  classLabels: Record<string, string[]>;
}

export interface FormattedExample {
  uid: string;
  /** Key for de-duplication (the uid, or a hash of the chosen columns). */
  dedupeKey: string;
  user: ChatMessage;
  answer?: string;
  label?: string;
  metadata: ExampleMetadata;
}

export function describeRecord(record: SourceRecord, sourceSplit: string, uid?: string): string {
  const where =
    record.file !== undefined
      ? `${record.file} row ${record.fileRow}`
      : `split '${sourceSplit}' row ${record.index}`;
  return uid !== undefined ? `${where} (uid ${uid})` : where;
}

/** A value as JSON that manifests and metadata can hold; undefined for binary data. */
function jsonSafe(value: unknown): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint')
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array || value === undefined) return undefined;
  if (Array.isArray(value)) {
    const items = value.map(jsonSafe);
    return items.some((v) => v === undefined) ? undefined : items;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const safe = jsonSafe(v);
      if (safe === undefined && v !== undefined) return undefined;
      out[k] = safe;
    }
    return out;
  }
  return undefined;
}

interface ImageInput {
  bytes: Uint8Array;
  sourcePath?: string;
}

/** Bytes of one image cell: an HF `{bytes, path}` struct, raw bytes, a data URL, or a path under the dataset root. */
function imageInputs(value: unknown, root: string | undefined, fail: (msg: string) => never): ImageInput[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap((v) => imageInputs(v, root, fail));
  if (value instanceof Uint8Array) return [{ bytes: value }];
  if (typeof value === 'string') {
    const dataUrl = /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(value);
    if (dataUrl) return [{ bytes: new Uint8Array(Buffer.from(dataUrl[1], 'base64')) }];
    return [{ bytes: readImageFile(value, root, fail), sourcePath: value }];
  }
  if (typeof value === 'object') {
    const { bytes, path } = value as { bytes?: unknown; path?: unknown };
    const sourcePath = typeof path === 'string' ? path : undefined;
    if (bytes instanceof Uint8Array && bytes.length > 0) return [{ bytes, sourcePath }];
    if (sourcePath) return [{ bytes: readImageFile(sourcePath, root, fail), sourcePath }];
  }
  return fail(
    `not an image (expected {bytes, path}, bytes, a data: URL or a file path), got ${typeof value}`,
  );
}

function readImageFile(path: string, root: string | undefined, fail: (msg: string) => never): Uint8Array {
  const full = isAbsolute(path) || !root ? path : join(root, path);
  if (!existsSync(full)) return fail(`image file '${path}' not found${root ? ` under ${root}` : ''}`);
  return new Uint8Array(readFileSync(full));
}

export async function formatExample(
  task: EffectiveTask,
  record: SourceRecord,
  sourceSplit: string,
  images: ImageStore,
  sourceRoot: string | undefined,
): Promise<FormattedExample> {
  const { row } = record;
  let uid: string | undefined;
  if (task.uid_column) {
    uid = valueToText(row[task.uid_column]).trim();
    if (!uid)
      throw new TlabError(
        `${describeRecord(record, sourceSplit)}: column '${task.uid_column}' (uid_column) is empty`,
      );
  }
  const where = describeRecord(record, sourceSplit, uid);

  const content: ContentPart[] = [];
  const stored: ExampleImage[] = [];
  for (const column of task.image_columns) {
    const fail = (msg: string): never => {
      throw new TlabError(`${where}: column '${column}': ${msg}`);
    };
    const inputs = imageInputs(row[column], sourceRoot, fail);
    for (const input of inputs) {
      let image: Awaited<ReturnType<ImageStore['add']>>;
      try {
        image = await images.add(input.bytes);
      } catch (error) {
        throw new TlabError(`${where}: column '${column}': cannot decode image: ${(error as Error).message}`);
      }
      content.push({ type: 'image', image: image.file });
      stored.push({
        file: image.file,
        width: image.width,
        height: image.height,
        column,
        ...(input.sourcePath ? { source_path: input.sourcePath } : {}),
      });
    }
  }
  const textParts: string[] = [];
  if (task.user_prompt) textParts.push(renderTemplate(task.user_prompt, row));
  if (task.user_text_column) textParts.push(valueToText(row[task.user_text_column]));
  const text = textParts.filter((t) => t.length > 0).join('\n');
  if (text) content.push({ type: 'text', text });
  if (content.length === 0) throw new TlabError(`${where}: the user message is empty (no image and no text)`);

  let answer: string | undefined;
  if (task.assistant_text_column) {
    const value = row[task.assistant_text_column];
    if (value === null || value === undefined)
      throw new TlabError(
        `${where}: column '${task.assistant_text_column}' (assistant_text_column) is empty`,
      );
    answer = labelText(task, task.assistant_text_column, value);
  }
  let label: string | undefined;
  if (task.label_column) {
    const value = row[task.label_column];
    if (value === null || value === undefined)
      throw new TlabError(`${where}: column '${task.label_column}' (label_column) is empty`);
    label = labelText(task, task.label_column, value);
  }

  const fields: Record<string, unknown> = {};
  const keep = task.metadata_columns ?? Object.keys(row).filter((c) => !task.image_columns.includes(c));
  for (const column of keep) {
    const safe = jsonSafe(row[column]);
    if (safe !== undefined) fields[column] = safe;
  }

  const user: ChatMessage = { role: 'user', content };
  if (uid === undefined) {
    // Same content, same uid: across builds, samplings and machines. Without dedupe, identical rows stay
    // distinct through their position in the source.
    const identity = { system: task.system_prompt ?? '', user: content, answer: answer ?? null };
    const position = task.dedupe === false ? { split: sourceSplit, index: record.index } : {};
    uid = sha256Hex(canonicalJson({ ...identity, ...position })).slice(0, 16);
  }
  const dedupeKey = Array.isArray(task.dedupe)
    ? sha256Hex(canonicalJson(task.dedupe.map((c) => jsonSafe(row[c]) ?? null)))
    : uid;
  const metadata: ExampleMetadata = {
    source_split: sourceSplit,
    source_index: record.index,
    ...(record.file !== undefined ? { source_file: record.file, source_row: record.fileRow } : {}),
    images: stored,
    fields,
  };
  return { uid, dedupeKey, user, answer, label, metadata };
}

/** Integer ClassLabel values become their names, everything else its text. */
function labelText(task: EffectiveTask, column: string, value: unknown): string {
  const names = task.classLabels[column];
  if (names && typeof value === 'number' && Number.isInteger(value) && names[value] !== undefined)
    return names[value];
  if (names && typeof value === 'bigint' && names[Number(value)] !== undefined) return names[Number(value)];
  return valueToText(value);
}
