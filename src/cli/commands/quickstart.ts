/**
 * `tlab quickstart` (what `npm start` runs): the built-in transfer study, examples/quickstart/experiment.yaml —
 * a family of synthetic grid-world tasks, a zoo of small models pre-trained on different source tasks, the
 * estimators on every (model, target), a fine-tuning grid, every result evaluated on every task, the estimators
 * correlated with the real fine-tuned scores — then a short text summary with the paths of the report and plots.
 * Everything is a run of the experiment runner, so a rerun finishes in seconds and an interrupted one continues.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadExperiment } from '../../lab/config/load.ts';
import { type ExperimentReport, runExperiment } from '../../lab/run.ts';
import { type ExperimentSummary, summaryBest, summaryEstimators } from '../../report/experiment-types.ts';
import { TlabError } from '../../util/errors.ts';
import { printJson } from '../options.ts';
import { stageTable } from './lab.ts';

export const QUICKSTART_CONFIG = new URL('../../../examples/quickstart/experiment.yaml', import.meta.url)
  .pathname;

const fmt = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined ? '  -  ' : v.toFixed(digits);

/** The study's findings in a few lines (from summary.json). */
export function quickstartReport(out: string, report: ExperimentReport): string {
  const file = join(out, 'summary.json');
  if (!existsSync(file)) return `${stageTable(report.rows)}\n(no summary: the summary run did not finish)\n`;
  const s = JSON.parse(readFileSync(file, 'utf8')) as ExperimentSummary;
  const estimators = summaryEstimators(s);
  const actual = s.actual_scores ?? [];
  // Relative to where tlab runs when inside it, else absolute.
  const rel = (p: string) => {
    const r = relative(process.cwd(), join(out, p));
    return r.startsWith('..') ? join(out, p) : r || '.';
  };
  const lines: string[] = [];
  const zoo = new Set(report.plan.runs.filter((r) => r.stage === 'pretrain').map((r) => r.name));
  const ft = report.plan.runs.filter((r) => r.stage === 'finetune');
  lines.push(
    `${zoo.size} zoo models pre-trained, ${ft.length} fine-tuned models, ${report.plan.runs.filter((r) => r.stage === 'eval').length} models evaluated on ${s.transfer?.tasks.length ?? 0} tasks (${report.executed} runs executed now)`,
  );
  const targets = [...new Set(actual.map((a) => a.task))];
  for (const t of targets) {
    const acc = actual.filter((a) => a.task === t).sort((a, b) => b.accuracy - a.accuracy);
    lines.push('', `target '${t}': each zoo model fine-tuned on it, then evaluated on it`);
    lines.push(`  ${acc.map((a) => `${a.model} ${fmt(a.accuracy, 2)}`).join('  ')}`);
    const n = Math.max(0, ...estimators.filter((e) => e.task === t).map((e) => e.n_samples ?? 0));
    const rows = estimators
      .filter((e) => e.task === t && (e.n_samples ?? 0) === n)
      .sort((a, b) => (b.kendall_tau.value ?? -2) - (a.kendall_tau.value ?? -2));
    if (rows.length) {
      lines.push(
        `  estimators (n_samples ${n}) vs that accuracy, Kendall τ [95% CI] over ${rows[0].n_models} models:`,
      );
      for (const e of rows)
        lines.push(
          `    ${e.metric.padEnd(10)} ${fmt(e.kendall_tau.value, 2).padStart(6)} [${fmt(e.kendall_tau.low, 2)}, ${fmt(e.kendall_tau.high, 2)}]`,
        );
    }
    const best = summaryBest(s).find((b) => b.task === t);
    if (best)
      lines.push(
        `  best predictor: ${best.estimator} (τ = ${fmt(best.kendall_tau, 2)}); best model: ${best.actual_best}; ${best.reliability}`,
      );
  }
  for (const note of (s.notes ?? []).slice(0, 5)) lines.push(`note: ${note}`);
  lines.push(
    '',
    `report:   ${rel('report/index.html')}`,
    `summary:  ${rel('summary.json')} (results table: ${rel('results.csv')})`,
    `plots:    ${rel('plots')}, ${rel('metrics/plots')}, ${rel('transfer_heatmap.png')}`,
    `dashboard: tlab dashboard ${rel('.')}`,
  );
  return `${lines.join('\n')}\n`;
}

export function registerQuickstartCommand(program: Command): void {
  program
    .command('quickstart')
    .description(
      'the built-in transfer study (examples/quickstart/experiment.yaml), end to end, with a summary',
    )
    .option('-o, --out <dir>', 'experiment folder', 'experiments/quickstart')
    .option('-c, --config <file>', 'another experiment YAML to run the same way')
    .option('--json', "print every run's final state as JSON on stdout")
    .option('-q, --quiet', 'no progress output')
    .action(async (flags: { out: string; config?: string; json?: boolean; quiet?: boolean }) => {
      const out = resolve(flags.out);
      const loaded = loadExperiment(flags.config ?? QUICKSTART_CONFIG);
      if (!flags.quiet) process.stderr.write(`quickstart: ${loaded.file} → ${out}\n`);
      const report = await runExperiment(loaded, { out, quiet: flags.quiet });
      if (flags.json) printJson({ out, executed: report.executed, runs: report.rows });
      else process.stdout.write(quickstartReport(out, report));
      const failed = report.rows.filter((r) => r.state === 'failed');
      if (failed.length)
        throw new TlabError(
          `${loaded.file}: ${failed.length} run(s) failed, first ${failed[0].stage}:${failed[0].name}`,
          `see ${join(out, 'runs', failed[0].id, 'run.json')}; rerun with tlab run ${loaded.file} --out ${out} --retry-failed`,
        );
    });
}
