/** `tlab eval grid <config>`: every model on every task, resumable, with per-sample logs and failure lists. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadGridConfig } from '../../eval/grid/config.ts';
import { runEvalGrid } from '../../eval/grid/run.ts';
import type { EvalGrid } from '../../eval/grid/schema.ts';
import { TlabError } from '../../util/errors.ts';
import { printJson } from '../options.ts';

interface GridFlags {
  out?: string;
  model?: string[];
  task?: string[];
  fresh?: boolean;
  json?: boolean;
  quiet?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The grid as a text table: one row per model, one column per task, the topline score (or why there is none). */
export function gridTable(grid: EvalGrid): string {
  const cell = (m: string, t: string): string => {
    const c = grid.cells.find((x) => x.model === m && x.task === t);
    if (!c) return '-';
    if (c.status === 'skipped') return 'skipped';
    if (c.status === 'error') return 'error';
    const ci = c.ci ? ` [${c.ci.low.toFixed(3)}, ${c.ci.high.toFixed(3)}]` : '';
    return `${c.score!.toFixed(3)}${ci}`;
  };
  const header = ['model', ...grid.tasks.map((t) => `${t.name} (${t.grader}, n=${t.n})`)];
  const rows = grid.models.map((m) => [
    m.role === 'base' ? m.name : `${m.name} ← ${m.train_task ?? '?'}`,
    ...grid.tasks.map((t) => cell(m.name, t.name)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((x, i) => x.padEnd(widths[i])).join('  ');
  const notes = grid.cells
    .filter((c) => c.status !== 'done')
    .map((c) => `${c.model} × ${c.task}: ${c.status}: ${(c.reason ?? c.error ?? '').split('\n')[0]}`);
  return [line(header), ...rows.map(line), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

export function registerEvalGrid(evalCommand: Command): void {
  evalCommand
    .command('grid')
    .description('evaluate every model on every task (resumable; cells redone only when their inputs change)')
    .argument('<config>', 'grid config (YAML/JSON): models, tasks, nb_eval_samples, inference settings')
    .option('-o, --out <dir>', "output folder (default: the config's out)")
    .option('--model <name>', 'only this model (repeatable)', collect)
    .option('--task <name>', 'only this task (repeatable)', collect)
    .option('--fresh', 'redo every selected cell')
    .option('--json', 'print eval_grid.json on stdout')
    .option('-q, --quiet', 'no progress output')
    .action(async (file: string, flags: GridFlags) => {
      const config = loadGridConfig(file, { out: flags.out });
      const grid = await runEvalGrid(config, {
        fresh: flags.fresh,
        models: flags.model,
        tasks: flags.task,
        quiet: flags.quiet,
      });
      if (flags.json) printJson(grid);
      else {
        process.stdout.write(`${gridTable(grid)}\n`);
        if (!flags.quiet)
          process.stderr.write(
            `wrote ${join(config.out, 'eval_grid.json')}, eval_grid_results.json, grader_logs/ and failures/\n`,
          );
      }
      const errors = grid.cells.filter((c) => c.status === 'error');
      if (errors.length > 0)
        throw new TlabError(
          `${file}: ${errors.length} of ${grid.cells.length} cells failed, first ${errors[0].model} × ${errors[0].task}: ${errors[0].error?.split('\n')[0]}`,
          `the other cells are written; rerun to retry the failed ones (${join(config.out, 'eval_grid.json')})`,
        );
    });
}
