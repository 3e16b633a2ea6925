/** `tlab metrics`: score one feature file with one estimator, list estimators, or run a sample-size sweep. */

import { isAbsolute, join } from 'node:path';
import type { Command } from 'commander';
import { readLabelFile, readMatrixFile } from '../../metrics/features.ts';
import { METRICS, type MetricParams, scoreMetric } from '../../metrics/registry.ts';
import { loadSweepConfig, readAccuracyTable, runSweep, summarizeSweep } from '../../metrics/sweep.ts';
import { TlabError } from '../../util/errors.ts';
import { printJson } from '../options.ts';
import { registerFeaturesCommand } from './features.ts';

function parseOption(value: string, previous: MetricParams): MetricParams {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new TlabError(`--option ${value}: expected key=value (e.g. k=3)`);
  const key = value.slice(0, eq);
  const raw = value.slice(eq + 1);
  let v: string | number | boolean | null = raw;
  if (raw === 'true' || raw === 'false') v = raw === 'true';
  else if (raw === 'null') v = null;
  else if (raw.trim() !== '' && Number.isFinite(Number(raw))) v = Number(raw);
  return { ...previous, [key]: v };
}

export function registerMetricsCommands(program: Command): void {
  const metrics = program
    .command('metrics')
    .description('transferability estimators: score features, or sweep models × tasks × sample sizes');
  registerFeaturesCommand(metrics);

  metrics
    .command('score')
    .description('score one feature matrix with one estimator (higher = better transfer)')
    .requiredOption('--features <file>', 'N×D features: .npy, .safetensors[#tensor] or .parquet#column')
    .requiredOption('--labels <file>', 'N target labels: .npy, .safetensors[#tensor] or .parquet#column')
    .option('--source-probs <file>', 'N×Cs source-model probabilities (leep, nce)')
    .requiredOption('--metric <name>', `one of ${Object.keys(METRICS).join(', ')}`)
    .option(
      '--option <key=value>',
      'estimator option, repeatable (e.g. k=3, thumlCompat=true)',
      parseOption,
      {},
    )
    .option('--json', 'print {"metric", "score", "n", "d", "c"} as JSON')
    .action(
      async (opts: {
        features: string;
        labels: string;
        sourceProbs?: string;
        metric: string;
        option: MetricParams;
        json?: boolean;
      }) => {
        const spec = METRICS[opts.metric];
        const needsFeatures = spec?.needs !== 'sourceProbs';
        const features = needsFeatures ? await readMatrixFile(opts.features) : undefined;
        const { labels, name: labelsName } = await readLabelFile(opts.labels);
        const sourceProbs = opts.sourceProbs ? await readMatrixFile(opts.sourceProbs) : undefined;
        const rows = features?.rows ?? sourceProbs?.rows;
        if (sourceProbs && features && sourceProbs.rows !== features.rows)
          throw new TlabError(
            `${sourceProbs.name} has ${sourceProbs.rows} rows but ${features.name} has ${features.rows}`,
          );
        if (rows !== undefined && labels.length !== rows)
          throw new TlabError(
            `${labelsName} has ${labels.length} rows but ${features?.name ?? sourceProbs?.name} has ${rows}`,
          );
        const names = { features: features?.name, labels: labelsName, sourceProbs: sourceProbs?.name };
        const score = await scoreMetric(opts.metric, { features, labels, sourceProbs, names }, opts.option);
        const n = labels.length;
        const d = features?.cols ?? sourceProbs?.cols ?? 0;
        const c = new Set(labels).size;
        if (opts.json) printJson({ metric: opts.metric, score, n, d, c });
        else process.stdout.write(`${opts.metric} = ${score} (n=${n}, d=${d}, c=${c})\n`);
      },
    );

  metrics
    .command('list')
    .description('list the estimators and their options')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }) => {
      const rows = Object.entries(METRICS).map(([name, s]) => ({
        name,
        needs: s.needs,
        options: s.params,
        description: s.description,
      }));
      if (opts.json) printJson(rows);
      else
        for (const r of rows)
          process.stdout.write(
            `${r.name.padEnd(18)} ${r.description}${r.options.length ? ` [options: ${r.options.join(', ')}]` : ''}\n`,
          );
    });

  metrics
    .command('sweep')
    .description('score every (model, task, metric, n_samples, seed) of a YAML/JSON config; resumable')
    .argument('<config>', 'sweep config (entries, metrics, n_samples, seeds, accuracy)')
    .requiredOption('--out <dir>', 'output folder (results/, summary.json, plots/)')
    .option('--force', 'recompute results that already exist')
    .option('--quiet', 'no progress output')
    .option('--json', 'print the summary as JSON')
    .action(
      async (configPath: string, opts: { out: string; force?: boolean; quiet?: boolean; json?: boolean }) => {
        const { config, baseDir } = loadSweepConfig(configPath);
        const accuracy = config.accuracy
          ? readAccuracyTable(isAbsolute(config.accuracy) ? config.accuracy : join(baseDir, config.accuracy))
          : undefined;
        const results = await runSweep(config, baseDir, opts);
        const summary = await summarizeSweep(results, accuracy, opts.out, {
          tieTolerance: config.tie_tolerance,
        });
        for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
        if (opts.json) printJson(summary);
        else {
          process.stdout.write(`${results.length} results, summary in ${join(opts.out, 'summary.json')}\n`);
          if (config.seeds.length > 1 && results.some((r) => r.all_rows))
            process.stdout.write(
              `n_samples covering every row (all) scored once, with seed ${config.seeds[0]} (the first): without a subsample every seed gives the same score\n`,
            );
          for (const c of summary.correlations)
            process.stdout.write(
              `${c.task} ${c.metric} n=${c.n_samples}: kendall ${c.kendall.toFixed(3)} [${c.kendall_ci95.map((v) => v.toFixed(2)).join(', ')}]${c.kendall_p_exact === null ? '' : ` p=${c.kendall_p_exact.toFixed(3)}`} weighted ${c.weighted_kendall.toFixed(3)} spearman ${c.spearman.toFixed(3)}${c.tied_models ? ` (${c.tied_models} tied)` : ''}\n`,
            );
        }
      },
    );
}
