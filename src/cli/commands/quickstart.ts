/**
 * `tlab quickstart` (what `npm start` runs): the built-in experiment. Builds a synthetic grid-world text task,
 * pre-trains a small GPT-2 on it and prints the learning curve; re-running resumes or reuses what exists.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildTasksFromFile } from '../../data/build/build-task.ts';
import { loadTrainConfig, parseTrainConfig } from '../../train/config.ts';
import { readJsonl } from '../../train/logging/jsonl-log.ts';
import { runTraining } from '../../train/run-training.ts';
import { positiveInt, printJson } from '../options.ts';

const EXAMPLE = new URL('../../../examples/quickstart/', import.meta.url).pathname;

/** A compact text chart of a series (one character column per bucket). */
export function sparkline(values: readonly number[], width = 60): string {
  if (values.length === 0) return '';
  const buckets = Math.min(width, values.length);
  const ticks = '▁▂▃▄▅▆▇█';
  const means = Array.from({ length: buckets }, (_, b) => {
    const from = Math.floor((b * values.length) / buckets);
    const to = Math.max(from + 1, Math.floor(((b + 1) * values.length) / buckets));
    const part = values.slice(from, to);
    return part.reduce((s, v) => s + v, 0) / part.length;
  });
  const lo = Math.min(...means);
  const hi = Math.max(...means);
  return means
    .map((m) => ticks[hi > lo ? Math.round(((m - lo) / (hi - lo)) * (ticks.length - 1)) : 0])
    .join('');
}

export function registerQuickstartCommand(program: Command): void {
  program
    .command('quickstart')
    .description(
      'the built-in experiment: build a synthetic task, pre-train a small GPT-2, show the learning curve',
    )
    .option('-o, --out <dir>', 'experiment folder', 'experiments/quickstart')
    .option('--max-steps <n>', 'training steps (default from examples/quickstart/pretrain.yaml)', positiveInt)
    .option('--json', 'print the summary as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .action(async (flags: { out: string; maxSteps?: number; json?: boolean; quiet?: boolean }) => {
      const taskDir = join(flags.out, 'formatted_datasets', 'grid_text');
      if (!existsSync(join(taskDir, 'manifest.json'))) {
        process.stderr.write(`building the grid-world task into ${taskDir}\n`);
        await buildTasksFromFile(join(EXAMPLE, 'tasks.yaml'), {
          outDir: join(flags.out, 'formatted_datasets'),
          quiet: flags.quiet,
        });
      }
      const file = join(EXAMPLE, 'pretrain.yaml');
      const raw = loadTrainConfig(file);
      const config = parseTrainConfig(
        {
          ...raw,
          out: flags.out,
          data: { ...raw.data, task: taskDir },
          training: { ...raw.training, ...(flags.maxSteps ? { max_steps: flags.maxSteps } : {}) },
        },
        file,
      );
      const summary = await runTraining(config, { configFile: file, mode: 'pretrain', quiet: flags.quiet });
      const { records } = readJsonl(join(summary.paths.logs, 'metrics.jsonl'));
      const trainLoss = records.filter((r) => r.split === 'train').map((r) => Number(r.loss));
      const evals = records.filter((r) => r.split === 'eval');
      const lines = [
        '',
        `learning curve of ${summary.name} (${summary.steps} steps, training loss):`,
        `  ${trainLoss[0]?.toFixed(3)} ${sparkline(trainLoss)} ${trainLoss[trainLoss.length - 1]?.toFixed(3)}`,
        '  step   eval loss   answer-token accuracy',
        ...evals.map(
          (e) =>
            `  ${String(e.step).padStart(4)}   ${Number(e.loss).toFixed(4).padStart(9)}   ${(100 * Number(e.accuracy)).toFixed(1).padStart(6)}%`,
        ),
        `plot: ${summary.paths.plot}`,
        `model: ${summary.paths.model}`,
        '',
      ];
      process.stderr.write(lines.join('\n'));
      if (flags.json) printJson(summary);
    });
}
