/**
 * Validation of task rows read back from a task folder (`<split>.jsonl`): a hand-edited or truncated file gives
 * an error naming the file, the line and the field, instead of an example that fails later, far from its cause.
 * Extra fields are kept (a newer tool may add some); the fields that readers rely on must be there and typed.
 */
import { z } from 'zod';
import { TlabError } from '../util/errors.ts';
import type { TaskExample } from './task-format.ts';

const PartSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text'), text: z.string() }),
  z.looseObject({ type: z.literal('image'), image: z.string().min(1) }),
]);

const MessageSchema = z.looseObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.array(PartSchema),
});

const ImageSchema = z.looseObject({
  file: z.string().min(1),
  width: z.int().min(1),
  height: z.int().min(1),
  column: z.string(),
  source_path: z.string().optional(),
});

export const TaskExampleSchema = z.looseObject({
  uid: z.string().min(1),
  split: z.string().min(1),
  messages: z.array(MessageSchema).min(1),
  answer: z.string().optional(),
  label: z.string().optional(),
  metadata: z.looseObject({
    source_split: z.string(),
    source_index: z.int().min(0),
    source_file: z.string().optional(),
    source_row: z.int().min(0).optional(),
    images: z.array(ImageSchema),
    fields: z.record(z.string(), z.unknown()),
  }),
});

/** The row as a TaskExample, or an error `file:line: field.path: what is wrong`. */
export function parseTaskRow(value: unknown, file: string, line: number): TaskExample {
  const r = TaskExampleSchema.safeParse(value);
  if (r.success) return r.data as TaskExample;
  const issue = r.error.issues[0];
  const path = issue.path.map(String).join('.');
  const uid =
    value && typeof value === 'object' && typeof (value as { uid?: unknown }).uid === 'string'
      ? ` (uid ${(value as { uid: string }).uid})`
      : '';
  return fail(
    `${file}:${line}: ${path || 'row'}: ${issue.message}${uid}`,
    r.error.issues.length > 1 ? `${r.error.issues.length} problems in this row` : undefined,
  );
}

function fail(message: string, details?: string): never {
  throw new TlabError(message, details ?? 'rebuild the task with: tlab data build <config.yaml>');
}
