/**
 * Prompt files: plain text (one prompt per non-empty line) or JSONL, where each line is a JSON string, an object
 * with "prompt" (text), or an object with "messages" (a chat, rendered with the tokenizer's template). A file is
 * JSONL when its name ends in .jsonl or its first non-empty line starts with `{` or `"`.
 */
import { readFileSync } from 'node:fs';
import type { ChatMessage } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import { isJsonObject } from '../util/json-file.ts';

/** A prompt as the user wrote it: text, or chat messages. */
export type PromptSource = { text: string } | { messages: ChatMessage[] };

export function readPromptFile(path: string): PromptSource[] {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TlabError(
      `${path}: cannot read prompt file (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
  const lines = content.split(/\r?\n/);
  const first = lines.find((l) => l.trim() !== '')?.trimStart() ?? '';
  const jsonl = path.endsWith('.jsonl') || first.startsWith('{') || first.startsWith('"');
  const out: PromptSource[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    out.push(jsonl ? parseLine(line, `${path}:${i + 1}`) : { text: line });
  });
  if (out.length === 0) throw new TlabError(`${path}: no prompts (the file has no non-empty line)`);
  return out;
}

function parseLine(line: string, where: string): PromptSource {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new TlabError(`${where}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof value === 'string') return { text: value };
  if (isJsonObject(value)) {
    if (typeof value.prompt === 'string') return { text: value.prompt };
    const messages = value.messages;
    if (Array.isArray(messages) && messages.length > 0 && messages.every(isMessage))
      return { messages: messages as ChatMessage[] };
  }
  throw new TlabError(
    `${where}: expected a JSON string, {"prompt": "..."} or {"messages": [{"role": ..., "content": ...}, ...]}`,
  );
}

function isMessage(m: unknown): boolean {
  return (
    isJsonObject(m) &&
    typeof m.role === 'string' &&
    (typeof m.content === 'string' || Array.isArray(m.content))
  );
}
