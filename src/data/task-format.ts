/**
 * The files of a built task, as the trainer, the eval grid and the metrics read them:
 *   formatted_datasets/<task>/<split>.jsonl   one TaskExample per line
 *   formatted_datasets/<task>/images/         every image once, named by content hash
 *   formatted_datasets/<task>/manifest.json   TaskManifest: sources, sampling, splits, hashes
 * Messages follow the OpenAI chat layout with content parts; image parts name a file relative to the task
 * folder (`{type: 'image', image: 'images/ab12.png'}`), which TRL/Qwen-style processors read directly.
 */

export interface TextPart {
  type: 'text';
  text: string;
}

export interface ImagePart {
  type: 'image';
  /** Path relative to the task folder. */
  image: string;
}

export type ContentPart = TextPart | ImagePart;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: ContentPart[];
}

export interface ExampleImage {
  file: string;
  width: number;
  height: number;
  /** Column the image came from (and its index for list columns). */
  column: string;
  /** The `path` of the source image struct or the image file, when there was one. */
  source_path?: string;
}

export interface ExampleMetadata {
  /** Source split and row index within it (shards concatenated), and the shard file and row when known. */
  source_split: string;
  source_index: number;
  source_file?: string;
  source_row?: number;
  images: ExampleImage[];
  /** Source fields kept as they were (scalars and JSON-able values). */
  fields: Record<string, unknown>;
}

export interface TaskExample {
  uid: string;
  split: string;
  messages: ChatMessage[];
  /** The reference answer (the last assistant turn's text), when the task has one. */
  answer?: string;
  /** Class name for classification-style tasks; its index is in TaskManifest.labels. */
  label?: string;
  metadata: ExampleMetadata;
}

export interface SplitSummary {
  file: string;
  rows: number;
  sha256: string;
}

export interface TaskManifest {
  format: 'transferlab-task/1';
  task: string;
  tool: { name: string; version: string };
  source: {
    kind: string;
    dataset: string;
    revision?: string;
    subset?: string;
    /** SHA-256 of every file read. */
    files: { path: string; bytes: number; sha256: string }[];
    /** Rows per source split. */
    splits: Record<string, number>;
  };
  /** Generator name, version, parameters (with defaults filled in) and seed, for synthetic tasks. */
  generator?: { name: string; version: number; params: Record<string, unknown>; seed: number };
  /** The task's config as built (defaults from the source filled in; `mode` left out: it never changes output). */
  config: Record<string, unknown>;
  /** SHA-256 of the task's config as written (canonical JSON, `mode` left out): tells whether a rebuild is due. */
  config_sha256?: string;
  sampling: {
    seed: number;
    sample_percent?: number;
    n_samples?: number | Record<string, number>;
    resplit?: Record<string, number>;
    dedupe: boolean | string[];
    /** Rows chosen per output split before de-duplication. */
    selected: Record<string, number>;
    duplicates_dropped: Record<string, number>;
  };
  splits: Record<string, SplitSummary>;
  images: { dir: 'images'; count: number; bytes: number };
  grader?: string;
  /** Class names (sorted) for tasks with a label column; TaskExample.label is one of them. */
  labels?: string[];
  few_shot?: { k: number; split: string; pool: string[] };
}

export const TASK_FORMAT = 'transferlab-task/1';

/** The text of a message (its text parts joined by newlines). */
export function messageText(message: ChatMessage): string {
  return message.content
    .filter((p): p is TextPart => p.type === 'text')
    .map((p) => p.text)
    .join('\n');
}

/** Image files a message or example refers to, relative to the task folder, in order. */
export function messageImages(messages: ChatMessage[]): string[] {
  return messages.flatMap((m) =>
    m.content.filter((p): p is ImagePart => p.type === 'image').map((p) => p.image),
  );
}
