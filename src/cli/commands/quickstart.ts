/**
 * `tlab quickstart` (what `npm start` runs): the built-in experiment. Builds a synthetic grid-world text task,
 * pre-trains a small GPT-2 on it and prints the learning curve; re-running resumes or reuses what exists, and
 * rebuilds the task (and restarts the run) when examples/quickstart/tasks.yaml changed.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildTasksFromFile, taskConfigHash } from '../../data/build/build-task.ts';
import { loadTasksFile } from '../../data/config.ts';
import { openTask } from '../../data/read.ts';
import { loadTrainConfig, parseTrainConfig } from '../../train/config.ts';
import { readJsonl } from '../../train/logging/jsonl-log.ts';
import { runTraining, type TrainingRunSummary } from '../../train/run-training.ts';
import { TlabError } from '../../util/errors.ts';
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

export interface QuickstartOptions {
  out: string;
  maxSteps?: number;
  quiet?: boolean;
  /** The folder with tasks.yaml and pretrain.yaml (default: examples/quickstart of this repository). */
  exampleDir?: string;
}

export interface QuickstartResult {
  summary: TrainingRunSummary;
  /** Why the task was built this time, or null when the existing folder was reused. */
  built: 'missing' | 'changed' | null;
  /** The learning-curve report printed on stderr. */
  report: string;
}

const TASK = 'grid_text';

/**
 * Builds the task unless a folder built from the same task config is there (its manifest records the config's
 * hash), then trains, resuming when the run has checkpoints. A rebuilt task invalidates the run made on the old
 * one, so that run's checkpoints, logs and model are removed and it starts over.
 */
export async function runQuickstart(options: QuickstartOptions): Promise<QuickstartResult> {
  const example = options.exampleDir ?? EXAMPLE;
  const tasksFile = join(example, 'tasks.yaml');
  const root = join(options.out, 'formatted_datasets');
  const taskDir = join(root, TASK);
  const task = loadTasksFile(tasksFile).tasks[TASK];
  if (!task) throw new TlabError(`${tasksFile}: tasks: the quickstart needs a task '${TASK}'`);
  const manifestFile = join(taskDir, 'manifest.json');
  let built: QuickstartResult['built'] = null;
  if (!existsSync(manifestFile)) built = 'missing';
  else if (openTask(taskDir).manifest.config_sha256 !== taskConfigHash(task)) built = 'changed';
  const file = join(example, 'pretrain.yaml');
  const raw = loadTrainConfig(file);
  const config = parseTrainConfig(
    {
      ...raw,
      out: options.out,
      data: { ...raw.data, task: taskDir },
      training: { ...raw.training, ...(options.maxSteps ? { max_steps: options.maxSteps } : {}) },
    },
    file,
  );
  if (built) {
    process.stderr.write(
      built === 'missing'
        ? `building the grid-world task into ${taskDir}\n`
        : `${tasksFile} changed since ${taskDir} was built: building it again\n`,
    );
    await buildTasksFromFile(tasksFile, { outDir: root, tasks: [TASK], quiet: options.quiet });
    if (built === 'changed')
      for (const kind of ['checkpoints', 'logs', 'models']) {
        const dir = join(options.out, kind, config.name);
        if (!existsSync(dir)) continue;
        process.stderr.write(`removing ${dir} (made from the previous task)\n`);
        rmSync(dir, { recursive: true, force: true });
      }
  }
  const summary = await runTraining(config, { configFile: file, mode: 'pretrain', quiet: options.quiet });
  const { records } = readJsonl(join(summary.paths.logs, 'metrics.jsonl'));
  const trainLoss = records.filter((r) => r.split === 'train').map((r) => Number(r.loss));
  const evals = records.filter((r) => r.split === 'eval');
  const report = [
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
  ].join('\n');
  return { summary, built, report };
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
      const { summary, report } = await runQuickstart(flags);
      process.stderr.write(report);
      if (flags.json) printJson(summary);
    });
}
