/**
 * `tlab eval transfer <grid>`: the transfer matrix (score, delta vs base, delta vs the in-task fine-tuned model)
 * and the relative-gain transferability index of an eval grid, with paired bootstrap CIs over its samples.
 * Writes transfer.json, transferability_results.csv and transfer_heatmap.svg/png (docs/transfer-and-shift.md).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { computeTransfer, DEFAULT_TRANSFER_SETTINGS, type ScoreSource } from '../../eval/transfer.ts';
import { loadTransferInput } from '../../eval/transfer-input.ts';
import { transferSummary, writeTransferOutputs } from '../../eval/transfer-output.ts';
import { Progress } from '../../util/progress.ts';
import { finiteNumber, nonNegativeInt, printJson } from '../options.ts';

interface TransferFlags {
  floor: number;
  minGain: number;
  resamples: number;
  level: number;
  seed: number;
  score: ScoreSource;
  out?: string;
  json?: boolean;
}

function scoreSource(value: string): ScoreSource {
  if (value !== 'topline' && value !== 'sample-mean')
    throw new InvalidArgumentError(`expected topline or sample-mean, got '${value}'`);
  return value;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return n;
}

export function registerEvalTransfer(evalCommand: Command): void {
  const d = DEFAULT_TRANSFER_SETTINGS;
  evalCommand
    .command('transfer')
    .description(
      'transfer matrix and relative-gain transferability index of an eval grid, with bootstrap CIs',
    )
    .argument('<grid>', 'an eval grid folder or its eval_grid.json')
    .option(
      '--floor <x>',
      'lower bound of the base score in g = score / max(base, floor) − 1',
      finiteNumber,
      d.floor,
    )
    .option(
      '--min-gain <x>',
      'the index g(j)/g(i) is undefined when |g(i)| is below this (in-task gain too close to zero)',
      finiteNumber,
      d.minGain,
    )
    .option(
      '--resamples <n>',
      'bootstrap resamples over evaluation samples (0: no intervals)',
      nonNegativeInt,
      d.resamples,
    )
    .option('--level <x>', 'confidence level of the percentile intervals', finiteNumber, d.level)
    .option('--seed <n>', 'bootstrap seed', integer, d.seed)
    .option(
      '--score <source>',
      "a cell's score: 'topline' (the grader's metric) or 'sample-mean' (mean of per-sample scores)",
      scoreSource,
      d.score,
    )
    .option('-o, --out <dir>', 'output folder (default: the grid folder)')
    .option('--json', 'print transfer.json on stdout')
    .action(async (gridPath: string, flags: TransferFlags) => {
      const input = loadTransferInput(gridPath);
      const progress = new Progress({
        total: flags.resamples,
        label: 'bootstrap',
        unit: 'resample',
        silent: flags.resamples === 0,
      });
      let reported = 0;
      const result = computeTransfer(
        input,
        {
          floor: flags.floor,
          minGain: flags.minGain,
          resamples: flags.resamples,
          level: flags.level,
          seed: flags.seed,
          score: flags.score,
        },
        (done, total) => {
          if (done - reported < 50 && done < total) return;
          progress.tick(done - reported);
          reported = done;
        },
      );
      progress.finish();
      const files = await writeTransferOutputs(result, flags.out ?? input.gridDir);
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      for (const e of result.excluded)
        process.stderr.write(`excluded: ${e.model} on ${e.task} (${e.status}): ${e.reason}\n`);
      if (flags.json) printJson(result);
      else process.stdout.write(`${transferSummary(result)}\n`);
      process.stderr.write(`wrote ${files.json}, ${files.csv}, ${files.heatmap.png}\n`);
    });
}
