/** Stage data: builds one task folder (formatted_datasets/<task>) with the data builder. */
import { join } from 'node:path';
import { buildTaskDataset } from '../../data/build/build-task.ts';
import type { TaskConfig } from '../../data/config.ts';
import type { StageContext, StageResult } from './context.ts';

export async function runDataStage(ctx: StageContext): Promise<StageResult> {
  const { task, spec } = ctx.run.config as { task: string; spec: TaskConfig };
  const r = await buildTaskDataset(task, spec, {
    outDir: join(ctx.plan.out, 'formatted_datasets'),
    baseDir: ctx.plan.base_dir,
    file: ctx.plan.file,
    quiet: ctx.quiet,
  });
  return { splits: r.splits, images: r.images };
}
