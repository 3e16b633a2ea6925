/** Stage tokenizer: one character- or word-level vocabulary over several tasks' training splits. */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadTaskSplit, openTask } from '../../data/read.ts';
import type { TaskExample } from '../../data/task-format.ts';
import { buildDataTokenizer } from '../../train/data-tokenizer.ts';
import { TlabError } from '../../util/errors.ts';
import { runWhere, type StageContext, type StageResult } from './context.ts';

export async function runTokenizerStage(ctx: StageContext): Promise<StageResult> {
  const { name, build, from_tasks } = ctx.run.config as {
    name: string;
    build: 'char' | 'word';
    from_tasks: string[];
  };
  const examples: TaskExample[] = [];
  for (const t of from_tasks) {
    const task = openTask(join(ctx.plan.out, 'formatted_datasets', t));
    if (!task.splits.includes('train'))
      throw new TlabError(`${runWhere(ctx)}: task '${t}' has no train split to build the vocabulary from`);
    examples.push(...(await loadTaskSplit(task.dir, 'train')));
  }
  const tokenizer = buildDataTokenizer(build, examples);
  const dir = join(ctx.plan.out, 'tokenizers', name);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  tokenizer.save(tmp);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(tmp, dir);
  return { vocab_size: tokenizer.vocabSize, examples: examples.length };
}
