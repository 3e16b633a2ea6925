/**
 * A built task's training split in an external trainer's own dataset format, one JSON row per line:
 *
 * - torchtune (`chat_dataset` with `conversation_style: openai`, i.e. `OpenAIToMessages`): `{"messages": [...]}`
 *   with OpenAI content parts, images as `image_url` parts holding absolute local file paths — torchtune's
 *   `load_image` opens local paths and http(s) URLs but not `data:` URLs (which the llama-cookbook wrote).
 * - TRL (`SFTTrainer`'s conversational vision format): `{"messages": [...], "images": [...]}` where each image
 *   part is a `{"type": "image"}` placeholder filled, in order, from `images` (absolute paths; the processor loads them).
 *
 * Rows keep one shape (every part has the same keys, unused ones null) so that `datasets`' JSON loader infers
 * one Arrow schema for the whole file.
 */
import { createWriteStream, mkdirSync, renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readTaskSplit } from '../../data/read.ts';
import type { TaskExample } from '../../data/task-format.ts';

/** trl-text: TRL for a text-only model (no images column, which would make SFTTrainer want a processor). */
export type DatasetFormat = 'torchtune' | 'trl' | 'trl-text';

export interface TorchtuneRow {
  messages: {
    role: string;
    content: { type: 'text' | 'image_url'; text: string | null; image_url: { url: string } | null }[];
  }[];
}

export interface TrlRow {
  messages: { role: string; content: { type: 'text' | 'image'; text: string | null }[] }[];
  images: string[];
}

/** TRL's conversational text format (a text-only model's tokenizer renders string contents). */
export interface TrlTextRow {
  messages: { role: string; content: string }[];
}

export function torchtuneRow(example: TaskExample, taskDir: string): TorchtuneRow {
  return {
    messages: example.messages.map((m) => ({
      role: m.role,
      content: m.content.map((p) =>
        p.type === 'text'
          ? { type: 'text' as const, text: p.text, image_url: null }
          : { type: 'image_url' as const, text: null, image_url: { url: resolve(taskDir, p.image) } },
      ),
    })),
  };
}

export function trlTextRow(example: TaskExample): TrlTextRow {
  return {
    messages: example.messages.map((m) => ({
      role: m.role,
      content: m.content.map((p) => (p.type === 'text' ? p.text : '')).join(''),
    })),
  };
}

export function trlRow(example: TaskExample, taskDir: string): TrlRow {
  const images: string[] = [];
  const messages = example.messages.map((m) => ({
    role: m.role,
    content: m.content.map((p) => {
      if (p.type === 'text') return { type: 'text' as const, text: p.text };
      images.push(resolve(taskDir, p.image));
      return { type: 'image' as const, text: null };
    }),
  }));
  return { messages, images };
}

/** Writes `split` of the task at `taskDir` to `path` (JSONL, temp file then rename); resolves with the row count. */
export async function writeTrainerDataset(
  format: DatasetFormat,
  taskDir: string,
  split: string,
  path: string,
): Promise<number> {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const out = createWriteStream(tmp);
  let rows = 0;
  try {
    for await (const example of readTaskSplit(taskDir, split)) {
      const row =
        format === 'torchtune'
          ? torchtuneRow(example, taskDir)
          : format === 'trl'
            ? trlRow(example, taskDir)
            : trlTextRow(example);
      if (!out.write(`${JSON.stringify(row)}\n`))
        await new Promise<void>((r) => out.once('drain', () => r()));
      rows += 1;
    }
  } finally {
    await new Promise<void>((r, reject) => out.end((error?: Error | null) => (error ? reject(error) : r())));
  }
  renameSync(tmp, path);
  return rows;
}
