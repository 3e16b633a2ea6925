/** One example by uid: its metadata and images, optionally copied out for a closer look. */
import { copyFileSync, mkdirSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { TlabError } from '../util/errors.ts';
import { findExample, openTask } from './read.ts';
import { messageText, type TaskExample } from './task-format.ts';

export interface InspectResult {
  task: string;
  uid: string;
  split: string;
  question: string;
  answer?: string;
  label?: string;
  /** Images of the example (not of its few-shot turns), with absolute paths. */
  images: {
    file: string;
    path: string;
    width: number;
    height: number;
    column: string;
    source_path?: string;
  }[];
  metadata: TaskExample['metadata'];
  messages: TaskExample['messages'];
  exported?: string[];
}

export async function inspectExample(
  taskDir: string,
  uid: string,
  exportDir?: string,
): Promise<InspectResult> {
  const task = openTask(taskDir);
  const ex = await findExample(task.dir, uid);
  if (!ex)
    throw new TlabError(
      `task '${task.name}': no example with uid '${uid}'`,
      `splits searched: ${task.splits.join(', ')}`,
    );
  const user = [...ex.messages].reverse().find((m) => m.role === 'user');
  const images = ex.metadata.images.map((im) => ({ ...im, path: task.imagePath(im.file) }));
  const result: InspectResult = {
    task: task.name,
    uid: ex.uid,
    split: ex.split,
    question: user ? messageText(user) : '',
    ...(ex.answer !== undefined ? { answer: ex.answer } : {}),
    ...(ex.label !== undefined ? { label: ex.label } : {}),
    images,
    metadata: ex.metadata,
    messages: ex.messages,
  };
  if (exportDir) {
    mkdirSync(exportDir, { recursive: true });
    result.exported = images.map((im, i) => {
      const target = resolve(exportDir, `${uid}-${i}-${im.column}${extname(im.file)}`);
      copyFileSync(im.path, target);
      return target;
    });
  }
  return result;
}
