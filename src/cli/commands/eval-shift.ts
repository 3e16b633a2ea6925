/**
 * `tlab eval shift --features <task>=<file> ...`: task-to-task distribution shift from model features (MMD²,
 * Fréchet distance, domain classifier / proxy A-distance, label JS divergence) for every task pair; with
 * --transfer, the Spearman correlation of each shift measure with the transfer index. Writes shift.json,
 * shift_pairs.csv, shift_heatmap.svg/png and shift_vs_transfer.svg/png (docs/transfer-and-shift.md).
 */
import { type Command, InvalidArgumentError } from 'commander';
import {
  analyzeShift,
  DEFAULT_SHIFT_SETTINGS,
  SHIFT_MEASURES,
  type ShiftMeasure,
  type ShiftSettings,
} from '../../eval/shift/analysis.ts';
import { loadShiftTasks, parseTaskFileArg, type TaskFileArg } from '../../eval/shift/inputs.ts';
import { shiftSummary, writeShiftOutputs } from '../../eval/shift/output.ts';
import { readTransferResult } from '../../eval/transfer-input.ts';
import { TlabError } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';
import { finiteNumber, nonNegativeInt, positiveInt, printJson } from '../options.ts';

interface ShiftFlags {
  features: TaskFileArg[];
  labels: TaskFileArg[];
  transfer?: string;
  measures?: ShiftMeasure[];
  permutations: number;
  mmdMaxSamples: number;
  mmdBandwidth?: number;
  frechetPca?: number;
  folds: number;
  domainC: number;
  domainMaxSamples: number;
  smoothing: number;
  seed: number;
  resamples: number;
  level: number;
  out: string;
  json?: boolean;
}

const collect =
  (option: string) =>
  (value: string, previous: TaskFileArg[]): TaskFileArg[] => [...previous, parseTaskFileArg(value, option)];

function measureList(value: string): ShiftMeasure[] {
  const list = value.split(',').map((s) => s.trim());
  for (const m of list)
    if (!(SHIFT_MEASURES as readonly string[]).includes(m))
      throw new InvalidArgumentError(`'${m}' is not one of ${SHIFT_MEASURES.join(', ')}`);
  return list as ShiftMeasure[];
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return n;
}

export function registerEvalShift(evalCommand: Command): void {
  const d = DEFAULT_SHIFT_SETTINGS;
  evalCommand
    .command('shift')
    .description('task-to-task distribution shift from features, and its correlation with transfer')
    .option(
      '--features <task=file>',
      "a task's N×D features: file[#tensor] (.npy/.safetensors/.parquet#col) or a `tlab metrics features` folder; repeat per task",
      collect('--features'),
      [],
    )
    .option(
      '--labels <task=file>',
      "a task's labels (class names from the features.json beside the file); repeat per task",
      collect('--labels'),
      [],
    )
    .option(
      '--transfer <file>',
      'transfer.json of `tlab eval transfer`: correlate each measure with the index',
    )
    .option(
      '--measures <list>',
      `comma-separated: ${SHIFT_MEASURES.join(', ')} (default: the feature measures, plus label-js when every task has labels)`,
      measureList,
    )
    .option(
      '--permutations <n>',
      'MMD permutation-test permutations (0: no p-value)',
      nonNegativeInt,
      d.mmd.permutations,
    )
    .option(
      '--mmd-max-samples <n>',
      'MMD: rows kept per task (seeded subsample)',
      positiveInt,
      d.mmd.maxSamples,
    )
    .option('--mmd-bandwidth <sigma>', 'MMD: fixed RBF width instead of the median heuristic', finiteNumber)
    .option(
      '--frechet-pca <k>',
      'Fréchet: project onto k principal components of the pooled features first',
      positiveInt,
    )
    .option('--folds <k>', 'domain classifier: cross-validation folds', positiveInt, d.domain.folds)
    .option(
      '--domain-c <C>',
      'domain classifier: inverse L2 strength of the logistic regression',
      finiteNumber,
      d.domain.C,
    )
    .option(
      '--domain-max-samples <n>',
      'domain classifier: rows per task at most',
      positiveInt,
      d.domain.maxSamples,
    )
    .option(
      '--smoothing <alpha>',
      'label-js: additive smoothing of the class counts',
      finiteNumber,
      d.labels.smoothing,
    )
    .option('--seed <n>', 'seed of subsamples, permutations, folds and the bootstrap', integer, d.seed)
    .option(
      '--resamples <n>',
      'bootstrap resamples of the Spearman CI',
      nonNegativeInt,
      d.correlation.resamples,
    )
    .option('--level <x>', 'confidence level of the Spearman CI', finiteNumber, d.correlation.level)
    .requiredOption('-o, --out <dir>', 'writes shift.json, shift_pairs.csv and the plots here')
    .option('--json', 'print shift.json on stdout')
    .action(async (flags: ShiftFlags) => {
      if (flags.features.length === 0 && flags.labels.length === 0)
        throw new TlabError('--features: give at least two tasks as --features <task>=<file>');
      if (!(flags.level > 0 && flags.level < 1))
        throw new TlabError(`--level: ${flags.level} must be in (0, 1)`);
      const tasks = await loadShiftTasks(flags.features, flags.labels);
      const measures =
        flags.measures ??
        ([
          ...(tasks.every((t) => t.features) ? (['mmd', 'frechet', 'domain'] as const) : []),
          ...(tasks.every((t) => t.labels) ? (['label-js'] as const) : []),
        ] as ShiftMeasure[]);
      if (measures.length === 0)
        throw new TlabError('--measures: no measure applies (give features, or labels, for every task)');
      const transfer = flags.transfer ? readTransferResult(flags.transfer) : undefined;
      const settings: ShiftSettings = {
        measures,
        seed: flags.seed,
        mmd: {
          permutations: flags.permutations,
          maxSamples: flags.mmdMaxSamples,
          bandwidth: flags.mmdBandwidth ?? null,
        },
        frechet: { pcaDims: flags.frechetPca ?? null },
        domain: { folds: flags.folds, C: flags.domainC, maxSamples: flags.domainMaxSamples },
        labels: { smoothing: flags.smoothing },
        correlation: { resamples: flags.resamples, level: flags.level },
      };
      const pairs = (tasks.length * (tasks.length - 1)) / 2;
      const progress = new Progress({ total: pairs * new Set(measures).size, label: 'shift', unit: 'step' });
      const result = await analyzeShift(tasks, settings, {
        transfer,
        transferSource: flags.transfer,
        onStep: (label) => progress.tick(1, label),
      });
      progress.finish();
      const files = await writeShiftOutputs(result, flags.out);
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      if (flags.json) printJson(result);
      else process.stdout.write(`${shiftSummary(result)}\n`);
      process.stderr.write(
        `wrote ${files.json}, ${files.csv}, ${files.heatmap.png}${files.scatter ? `, ${files.scatter.png}` : ''}\n`,
      );
    });
}
