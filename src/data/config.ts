/**
 * Task definitions as they appear under `tasks:` in an experiment YAML, validated with zod. Errors name the
 * file and the field path (`config.yaml: tasks.task1.sample_percent: must be in (0, 1], got 1.5`).
 * `TaskConfigSchema` is exported so the experiment runner can embed it in its own schema.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { TlabError } from '../util/errors.ts';
import { zodIssuesError } from '../util/zod-errors.ts';

const fraction = (what: string) =>
  z
    .number()
    .refine((v) => v >= 0 && v <= 1, { error: (iss) => `${what} must be in [0, 1], got ${iss.input}` });

const columnName = z.string().min(1, 'must be a non-empty column name');

export const FewShotSchema = z
  .object({
    /** Number of solved examples put before each question, as earlier user/assistant turns. */
    k: z.int().min(1),
    /** Output split the shots are drawn from (never the example itself). */
    split: z.string().default('train'),
    /** How many candidate shots are drawn (seeded) from that split; each example picks k of them. */
    pool_size: z.int().min(1).optional(),
  })
  .strict();

export const TaskConfigSchema = z
  .object({
    /** `org/name` (Hugging Face hub, cache first), a local path (file or folder), or `synthetic:<generator>`. */
    dataset: z.string().min(1),
    /** Hub revision (branch, tag or commit); default `main`. */
    revision: z.string().min(1).optional(),
    /** Hugging Face config (subset) name, as in the dataset card's `configs:`. */
    subset: z.string().min(1).optional(),
    /** Parameters of a synthetic generator (validated by the generator). */
    generator: z.record(z.string(), z.unknown()).optional(),
    /** `streaming` reads row groups lazily with bounded memory; `cached` materialises each file first. */
    mode: z.enum(['streaming', 'cached']).default('streaming'),
    /** Keep only these source splits, or rename them: `{train: train, test: validation}`. */
    splits: z.union([z.array(z.string().min(1)).min(1), z.record(z.string(), z.string().min(1))]).optional(),
    /** Pool all kept source splits, then split again with the seed: `{train: 0.8, validation: 0.1, test: 0.1}`. */
    resplit: z.record(z.string(), fraction('a split fraction')).optional(),
    /** Shorthand of the replaced tool: resplit into train (this fraction) and test (the rest). */
    resplit_train_percent: fraction('resplit_train_percent').optional(),
    sample_percent: z
      .number()
      .refine((v) => v > 0 && v <= 1, { error: (iss) => `must be in (0, 1], got ${iss.input}` })
      .optional(),
    /** Rows to keep per output split (a number for every split, or one per split name). */
    n_samples: z.union([z.int().min(1), z.record(z.string(), z.int().min(1))]).optional(),
    seed: z.int().default(0),
    system_prompt: z.string().optional(),
    /** User text; `{column}` inserts that field of the row (`{{`/`}}` are literal braces). */
    user_prompt: z.string().optional(),
    /** A column appended to the user prompt on a new line (e.g. a JSON schema per row). */
    user_text_column: columnName.optional(),
    image_column: z.union([columnName, z.array(columnName).min(1)]).optional(),
    assistant_text_column: columnName.optional(),
    /** Class of the example for classification-style tasks (transferability metrics read it). */
    label_column: columnName.optional(),
    /** Where the uid comes from; without it the uid is a stable hash of the example's content. */
    uid_column: columnName.optional(),
    /** Source columns kept in each example's metadata; default: every non-image scalar column. */
    metadata_columns: z.array(columnName).optional(),
    /** Drop repeated examples (same uid, or the same values in these columns), first occurrence wins. */
    dedupe: z.union([z.boolean(), z.array(columnName).min(1)]).default(true),
    few_shot: FewShotSchema.optional(),
    grader: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((task, ctx) => {
    if (task.sample_percent !== undefined && task.n_samples !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['n_samples'],
        message: 'give sample_percent or n_samples, not both',
      });
    if (task.resplit && task.resplit_train_percent !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['resplit_train_percent'],
        message: 'give resplit or resplit_train_percent, not both',
      });
    if (task.resplit) {
      const names = Object.keys(task.resplit);
      if (names.length === 0) ctx.addIssue({ code: 'custom', path: ['resplit'], message: 'names no split' });
      const sum = Object.values(task.resplit).reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 1e-9)
        ctx.addIssue({
          code: 'custom',
          path: ['resplit'],
          message: `fractions must add up to 1, got ${sum}`,
        });
    }
    if (task.generator && !task.dataset.startsWith('synthetic:'))
      ctx.addIssue({
        code: 'custom',
        path: ['generator'],
        message: 'only synthetic:<generator> datasets take generator parameters',
      });
  });

export type TaskConfig = z.infer<typeof TaskConfigSchema>;
export type TaskConfigInput = z.input<typeof TaskConfigSchema>;

const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const TasksSchema = z.record(
  z.string().regex(TASK_NAME, 'task names may use letters, digits, _ . - (they become folder names)'),
  TaskConfigSchema,
);

/** Parsed `tasks:` of an experiment file; `file` is kept for error messages and relative paths. */
export interface TasksFile {
  file: string;
  tasks: Record<string, TaskConfig>;
}

/** Config errors are formatted (and unknown keys get did-you-mean) in one place for every parser. */
export { zodIssuesError } from '../util/zod-errors.ts';

/** Validates the `tasks:` mapping of an already-parsed experiment document. */
export function parseTasks(document: unknown, file: string): TasksFile {
  const name = basename(file);
  if (document === null || typeof document !== 'object' || Array.isArray(document))
    throw new TlabError(`${name}: expected a mapping with a 'tasks:' section`);
  const tasks = (document as Record<string, unknown>).tasks;
  if (tasks === undefined || tasks === null)
    throw new TlabError(
      `${name}: tasks: missing; define each task under 'tasks:' (e.g. tasks: {task1: {dataset: org/name, ...}})`,
    );
  const parsed = TasksSchema.safeParse(tasks);
  if (!parsed.success) throw zodIssuesError(name, ['tasks'], parsed.error);
  if (Object.keys(parsed.data).length === 0) throw new TlabError(`${name}: tasks: defines no task`);
  return { file, tasks: parsed.data };
}

/** Reads and validates an experiment YAML's `tasks:` section. */
export function loadTasksFile(file: string): TasksFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TlabError(`${file}: cannot read config (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  let document: unknown;
  try {
    document = YAML.parse(text);
  } catch (error) {
    throw new TlabError(`${basename(file)}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  return parseTasks(document, file);
}

/** The output splits' fractions when the task resplits its pooled source rows, or undefined. */
export function resplitFractions(task: TaskConfig): Record<string, number> | undefined {
  if (task.resplit) return task.resplit;
  if (task.resplit_train_percent !== undefined)
    return { train: task.resplit_train_percent, test: 1 - task.resplit_train_percent };
  return undefined;
}
