/**
 * The samples a grid evaluates for one task: the split's examples (or a seeded subset of them, the same for every
 * model, kept in file order), each with its prompt, images, reference and — for multiple choice — its options.
 */
import { join } from 'node:path';
import { sha256Hex } from '../../data/hash.ts';
import { loadTaskSplit } from '../../data/read.ts';
import type { ChatMessage, TaskExample } from '../../data/task-format.ts';
import { TlabError } from '../../util/errors.ts';
import { Rng } from '../../util/random.ts';
import type { InferenceMessage } from '../inference/types.ts';
import { imageFiles, promptMessages, referenceAnswer } from '../task-prompt.ts';
import type { ResolvedTask } from './config.ts';

export interface EvalSample {
  uid: string;
  /** The conversation up to the answer (task layout: image parts name task-relative files). */
  prompt: ChatMessage[];
  /** Task-relative image files, in order. */
  images: string[];
  reference: unknown;
  choices?: string[];
  gold?: number;
}

export interface TaskSamples {
  samples: EvalSample[];
  /** SHA-256 of the evaluated uids, newline-joined in order. */
  uidsSha256: string;
  /** Examples in the split. */
  total: number;
}

/** Indices of a seeded subset of size n of 0..total-1, in increasing order (all of them when n is null or ≥ total). */
export function subsetIndices(total: number, n: number | null, seed: number, task: string): number[] {
  const all = Array.from({ length: total }, (_, i) => i);
  if (n === null || n >= total) return all;
  Rng.at(seed, 'eval-subset', task).shuffle(all);
  return all.slice(0, n).sort((a, b) => a - b);
}

function field(example: TaskExample, name: string, where: string): unknown {
  const fields = example.metadata?.fields ?? {};
  if (!(name in fields))
    throw new TlabError(
      `${where}: example ${example.uid} has no metadata field '${name}'; its fields: ${Object.keys(fields).join(', ') || '(none)'}`,
    );
  return fields[name];
}

/** One example as an eval sample; `where` names the task in errors. */
export function evalSample(example: TaskExample, task: ResolvedTask, where: string): EvalSample {
  const prompt = promptMessages(example);
  const reference = task.referenceField
    ? field(example, task.referenceField, where)
    : referenceAnswer(example);
  if (reference === undefined)
    throw new TlabError(
      `${where}: example ${example.uid} has no reference answer (no assistant turn); set reference_field`,
    );
  const sample: EvalSample = { uid: example.uid, prompt, images: imageFiles(prompt), reference };
  if (task.choicesField) {
    const choices = field(example, task.choicesField, where);
    if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string'))
      throw new TlabError(
        `${where}: example ${example.uid}: choices_field '${task.choicesField}' must hold a list of at least 2 strings`,
      );
    sample.choices = choices;
    if (task.goldField) {
      const gold = field(example, task.goldField, where);
      if (!Number.isInteger(gold) || (gold as number) < 0 || (gold as number) >= choices.length)
        throw new TlabError(
          `${where}: example ${example.uid}: gold_field '${task.goldField}' must be an option index 0..${choices.length - 1}, got ${JSON.stringify(gold)}`,
        );
      sample.gold = gold as number;
    } else {
      const gold = choices.indexOf(String(reference));
      if (gold < 0)
        throw new TlabError(
          `${where}: example ${example.uid}: the reference ${JSON.stringify(reference)} is not one of its options; set gold_field`,
        );
      sample.gold = gold;
    }
  }
  return sample;
}

/** The samples of a task split for the grid (see the module comment). */
export async function loadTaskSamples(
  task: ResolvedTask,
  n: number | null,
  seed: number,
  where: string,
): Promise<TaskSamples> {
  const examples = await loadTaskSplit(task.dir, task.split);
  if (examples.length === 0) throw new TlabError(`${where}: split '${task.split}' of ${task.dir} is empty`);
  const chosen = subsetIndices(examples.length, n, seed, task.name).map((i) =>
    evalSample(examples[i], task, where),
  );
  return {
    samples: chosen,
    uidsSha256: sha256Hex(chosen.map((s) => s.uid).join('\n')),
    total: examples.length,
  };
}

/** A sample's prompt for a backend: image parts as absolute file paths. */
export function inferenceMessages(sample: EvalSample, taskDir: string): InferenceMessage[] {
  return sample.prompt.map((m) => ({
    role: m.role,
    content: m.content.map((p) =>
      p.type === 'text'
        ? { type: 'text' as const, text: p.text }
        : { type: 'image' as const, image: { path: join(taskDir, p.image) } },
    ),
  }));
}
