/**
 * Stage eval: one model on every evaluation task, as one model's row of the eval grid (cells, grader logs and
 * failure lists under the experiment folder). The summary stage rebuilds eval_grid.json from every model's cells.
 */
import { resolveGridConfig } from '../../eval/grid/config.ts';
import { runEvalGrid } from '../../eval/grid/run.ts';
import { TlabError } from '../../util/errors.ts';
import { evalRunGrid } from '../external/eval-server.ts';
import { runWhere, type StageContext, type StageResult } from './context.ts';

export async function runEvalStage(ctx: StageContext): Promise<StageResult> {
  const where = runWhere(ctx);
  // evals.model_server: the model through a launched vLLM / tlab serve process, or a running server.
  const { settings, model, openBackend } = evalRunGrid(ctx, ctx.run.config);
  const config = resolveGridConfig({ ...settings, models: [model] }, where, {
    out: ctx.plan.out,
    baseDir: ctx.plan.out,
    knownModels: ctx.plan.runs.filter((r) => r.stage === 'eval').map((r) => r.name),
  });
  const grid = await runEvalGrid(config, {
    quiet: ctx.quiet,
    gridFiles: false,
    ...(openBackend ? { openBackend } : {}),
  });
  const count = (status: string) => grid.cells.filter((c) => c.status === status).length;
  const errors = grid.cells.filter((c) => c.status === 'error');
  if (errors.length)
    throw new TlabError(
      `${where}: ${errors.length} of ${grid.cells.length} cells failed, first ${errors[0].task}: ${errors[0].error?.split('\n')[0]}`,
      errors.map((e) => `${e.task}: ${e.error}`).join('\n'),
    );
  return {
    done: count('done'),
    skipped: count('skipped'),
    scores: Object.fromEntries(grid.cells.filter((c) => c.status === 'done').map((c) => [c.task, c.score])),
  };
}
