/** `tlab report <experiment-dir>`: the study as one static HTML page (opens from disk) plus every chart as SVG/PNG. */
import type { Command } from 'commander';
import { writeReport } from '../../report/write-report.ts';
import { nonNegativeInt, printJson } from '../options.ts';

interface Flags {
  out?: string;
  failuresPerCell: number;
  maxFailures: number;
  json?: boolean;
  quiet?: boolean;
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'write a static, self-contained HTML report of an experiment folder (summary, runs, transfer matrix, estimators, curves, geometry, failures with images), every chart also as SVG and PNG',
    )
    .argument(
      '<experiment-dir>',
      'the experiment folder (tlab run writes one; an eval grid folder works too)',
    )
    .option('-o, --out <dir>', 'output folder (default: <experiment-dir>/report)')
    .option('--failures-per-cell <n>', 'wrong answers shown per model × task', nonNegativeInt, 4)
    .option('--max-failures <n>', 'wrong answers shown in all', nonNegativeInt, 48)
    .option('--json', 'print {index, charts, failures, warnings} as JSON')
    .option('-q, --quiet', 'no progress output')
    .action(async (dir: string, flags: Flags) => {
      const r = await writeReport(dir, {
        outDir: flags.out,
        failuresPerCell: flags.failuresPerCell,
        maxFailures: flags.maxFailures,
        quiet: flags.quiet || flags.json,
      });
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      if (flags.json) printJson(r);
      else
        process.stderr.write(
          `report: ${r.index} (${r.charts.length / 2} charts as SVG and PNG, ${r.failures} failures shown)\n`,
        );
    });
}
