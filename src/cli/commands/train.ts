/** `tlab pretrain <config>` and `tlab finetune <config>`: train from a YAML config, resuming when possible. */
import type { Command } from 'commander';
import { loadTrainConfig, parseTrainConfig } from '../../train/config.ts';
import { runTraining, type TrainingRunSummary } from '../../train/run-training.ts';
import { nonNegativeInt, positiveInt, printJson } from '../options.ts';

interface TrainFlags {
  out?: string;
  name?: string;
  maxSteps?: number;
  seed?: number;
  fresh?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function describe(mode: 'pretrain' | 'finetune'): string {
  return mode === 'pretrain'
    ? 'pre-train a model from scratch (model.config) on a built task'
    : 'fine-tune a model folder (model.from): full, LoRA or per-component';
}

function report(s: TrainingRunSummary): void {
  const evalText = s.eval
    ? `, eval loss ${s.eval.loss.toFixed(4)}, token accuracy ${(100 * s.eval.accuracy).toFixed(1)}%`
    : '';
  process.stderr.write(
    `${s.name}: ${s.steps} steps${s.resumedFrom ? ` (resumed from ${s.resumedFrom})` : ''}, train loss ${s.trainLoss?.toFixed(4) ?? '-'}${evalText}\n` +
      `  model ${s.paths.model}\n  logs  ${s.paths.logs}${s.paths.plot ? `\n  plot  ${s.paths.plot}` : ''}\n`,
  );
}

export function registerTrainCommands(program: Command): void {
  for (const mode of ['pretrain', 'finetune'] as const) {
    program
      .command(mode)
      .description(describe(mode))
      .argument('<config>', 'training YAML (see README, "Training")')
      .option('-o, --out <dir>', 'experiment folder (overrides `out`)')
      .option('--name <name>', 'run name (overrides `name`)')
      .option('--max-steps <n>', 'optimizer steps (overrides training.max_steps)', positiveInt)
      .option('--seed <n>', 'seed (overrides `seed`; default 0)', nonNegativeInt)
      .option('--fresh', 'refuse to resume: fail if the run already has checkpoints')
      .option('--json', 'print a JSON summary on stdout')
      .option('-q, --quiet', 'no progress bar')
      .action(async (file: string, flags: TrainFlags) => {
        const raw = loadTrainConfig(file);
        const config = parseTrainConfig(
          {
            ...raw,
            ...(flags.out ? { out: flags.out } : {}),
            ...(flags.name ? { name: flags.name } : {}),
            ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
            training: { ...raw.training, ...(flags.maxSteps ? { max_steps: flags.maxSteps } : {}) },
          },
          file,
        );
        const summary = await runTraining(config, {
          configFile: file,
          mode,
          quiet: flags.quiet,
          resume: flags.fresh ? 'never' : 'auto',
        });
        report(summary);
        if (flags.json) printJson(summary);
      });
  }
}
