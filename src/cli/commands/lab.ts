/**
 * Studies from one YAML: `tlab run` (plan and execute what is missing), `tlab status`, `tlab validate`,
 * `tlab run-one` (one run of a planned experiment: what workers and cluster jobs execute), `tlab import locomoset`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { SlurmSettingsSchema } from '../../lab/config/cluster-schema.ts';
import { type LoadedExperiment, loadExperiment } from '../../lab/config/load.ts';
import { importLocomoset } from '../../lab/config/locomoset.ts';
import { executeRun } from '../../lab/execute-run.ts';
import { InlineExecutor } from '../../lab/executors/inline.ts';
import { SlurmExecutor } from '../../lab/executors/slurm.ts';
import { runSlurmTask } from '../../lab/executors/slurm-job.ts';
import { slurmJobs, slurmJobsTable } from '../../lab/executors/slurm-status.ts';
import type { Executor } from '../../lab/executors/types.ts';
import { WorkersExecutor } from '../../lab/executors/workers.ts';
import { experimentDir, planExperiment } from '../../lab/plan/plan.ts';
import { type Plan, STAGES } from '../../lab/plan/types.ts';
import { executorFor, planStatus, type RunRow, runExperiment, selectRuns } from '../../lab/run.ts';
import { RunStore } from '../../lab/store.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { nonNegativeInt, positiveInt, printJson } from '../options.ts';

const collect = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  ...value.split(',').filter(Boolean),
];

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((x, i) => x.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** What a run waits on, shortened for a table. */
function waits(r: RunRow): string {
  return r.waiting.length > 3
    ? `${r.waiting.slice(0, 3).join(', ')} (+${r.waiting.length - 3} more)`
    : r.waiting.join(', ');
}

/** Runs per stage and state. */
export function stageTable(rows: readonly RunRow[]): string {
  const states = ['done', 'running', 'pending', 'blocked', 'failed'] as const;
  const body = STAGES.filter((s) => rows.some((r) => r.stage === s)).map((s) => [
    s,
    ...states.map((st) => String(rows.filter((r) => r.stage === s && r.state === st).length)),
    String(rows.filter((r) => r.stage === s).length),
  ]);
  return table(['stage', ...states, 'total'], body);
}

function failures(plan: Plan, rows: readonly RunRow[]): string[] {
  const store = new RunStore(plan.out);
  return rows
    .filter((r) => r.state === 'failed')
    .map((r) => `${r.stage}:${r.name} (${r.id}): ${store.read(r.id)?.error?.split('\n')[0] ?? 'failed'}`);
}

/** A plan's experiment folder: the folder itself, or the one a config file plans. */
async function openPlan(target: string): Promise<Plan> {
  if (existsSync(target) && statSync(target).isDirectory()) {
    const file = join(target, 'plan.json');
    if (!existsSync(file))
      throw new TlabError(`${target}: no plan.json (not an experiment folder; run tlab run <config> first)`);
    return JSON.parse(readFileSync(file, 'utf8')) as Plan;
  }
  return planExperiment(loadExperiment(target));
}

interface RunFlags {
  only?: string[];
  retryFailed?: boolean;
  dryRun?: boolean;
  executor?: string;
  workers?: number;
  out?: string;
  quiet?: boolean;
  json?: boolean;
}

function chooseExecutor(flags: RunFlags, loaded: LoadedExperiment): Executor {
  if (!flags.executor) return flags.workers ? new WorkersExecutor(flags.workers) : executorFor(loaded);
  if (flags.executor === 'inline') return new InlineExecutor();
  if (flags.executor === 'workers') return new WorkersExecutor(flags.workers ?? 2);
  if (flags.executor === 'slurm')
    return new SlurmExecutor(loaded.config.executor?.slurm ?? SlurmSettingsSchema.parse({}));
  throw new InvalidArgumentError(`--executor: '${flags.executor}' is not one of inline, workers, slurm`);
}

export function registerLabCommands(program: Command): void {
  program
    .command('run')
    .description('run a study from one experiment YAML: plan the grid and execute what is missing')
    .argument('<config>', 'experiment YAML (transferlab layout, or the llama-cookbook config.yaml)')
    .option(
      '--only <stage|glob>',
      'only runs of this stage or with matching names (repeatable, comma-separated)',
      collect,
    )
    .option('--retry-failed', 'run failed runs again')
    .option(
      '--dry-run',
      'print the plan (run id, stage, state, what it waits on), or with --executor slurm the batch scripts it would submit; execute nothing',
    )
    .option('--executor <kind>', 'inline | workers | slurm (default: the config, else inline)')
    .option('--workers <n>', 'child processes for the workers executor', positiveInt)
    .option('-o, --out <dir>', 'experiment folder (default: the config, else experiments/<name>)')
    .option('-q, --quiet', 'no progress output')
    .option('--json', 'print the final state of every run as JSON')
    .action(async (file: string, flags: RunFlags) => {
      const loaded = loadExperiment(file);
      for (const note of loaded.notes) if (!flags.quiet) process.stderr.write(`note: ${note}\n`);
      const executor = chooseExecutor(flags, loaded);
      const report = await runExperiment(loaded, {
        only: flags.only,
        retryFailed: flags.retryFailed,
        dryRun: flags.dryRun,
        executor,
        out: flags.out ? resolve(flags.out) : undefined,
        quiet: flags.quiet,
      });
      if (flags.dryRun && executor instanceof SlurmExecutor && !flags.json)
        process.stdout.write(executor.dryRun(report.plan, report.rows, selectRuns(report.plan, flags.only)));
      else if (flags.json) printJson({ out: report.plan.out, executed: report.executed, runs: report.rows });
      else if (flags.dryRun) {
        process.stdout.write(
          `${table(
            ['id', 'stage', 'name', 'state', 'waits on'],
            report.rows.map((r) => [r.id, r.stage, r.name, r.state, waits(r)]),
          )}\n`,
        );
        for (const note of report.plan.notes) process.stdout.write(`note: ${note}\n`);
      } else {
        process.stdout.write(`${stageTable(report.rows)}\n`);
        const out = report.plan.out;
        if (existsSync(join(out, 'summary.json')))
          process.stdout.write(`\nsummary: ${join(out, 'summary.json')}\n`);
        if (existsSync(join(out, 'report', 'index.html')))
          process.stdout.write(`report:  ${join(out, 'report', 'index.html')}\n`);
      }
      const failed = failures(report.plan, report.rows);
      if (failed.length)
        throw new TlabError(
          `${file}: ${failed.length} run(s) failed, first ${failed[0]}`,
          [
            ...failed.slice(1),
            `see ${join(report.plan.out, 'runs')}/<id>/run.json; rerun with --retry-failed`,
          ].join('\n'),
        );
    });

  program
    .command('run-one')
    .description('execute one run of a planned experiment (what workers and cluster jobs run)')
    .argument('<experiment-dir>', 'the experiment folder (with plan.json)')
    .argument('<run-id>', 'the run id (from plan.json or tlab run --dry-run)')
    .option(
      '--executor <kind>',
      'recorded in run.json; slurm: a SLURM array task (handles USR2/TERM: checkpoint, requeue)',
      'inline',
    )
    .option(
      '--max-requeues <n>',
      'slurm: fail the run once its job was requeued more often',
      nonNegativeInt,
      3,
    )
    .option('-q, --quiet', 'no progress output')
    .action(
      async (dir: string, id: string, flags: { executor: string; maxRequeues: number; quiet?: boolean }) => {
        const plan = await openPlan(dir);
        const run = plan.runs.find((r) => r.id === id || r.name === id);
        if (!run)
          throw new TlabError(
            `${dir}: no run '${id}' in plan.json (ids and names are listed by tlab run --dry-run)`,
          );
        if (flags.executor === 'slurm') {
          const outcome = await runSlurmTask(plan, run, {
            maxRequeues: flags.maxRequeues,
            quiet: flags.quiet,
          });
          if (outcome.how === 'requeued' || outcome.how === 'stopped') {
            process.stderr.write(
              `tlab run-one: ${run.name} ${outcome.how}; it resumes when the job runs again\n`,
            );
            // A stage that cannot stop early is still running: the scheduler ends this job now.
            process.exit(0);
          }
          if (outcome.record.state === 'failed')
            throw new TlabError(
              `${run.stage}:${run.name}: ${outcome.record.error?.split('\n')[0]}`,
              outcome.record.error ?? undefined,
            );
          return;
        }
        const record = await executeRun(plan, run, {
          quiet: flags.quiet,
          executor: { kind: flags.executor },
        });
        if (record.state === 'failed')
          throw new TlabError(
            `${run.stage}:${run.name}: ${record.error?.split('\n')[0]}`,
            record.error ?? undefined,
          );
      },
    );

  program
    .command('status')
    .description("a study's runs by stage and state (from run.json files; no database)")
    .argument('<config|experiment-dir>', 'experiment YAML or folder')
    .option('--json', 'every run with its state (and SLURM jobs) as JSON')
    .option('--runs', 'list every run, not only the counts')
    .action(async (target: string, flags: { json?: boolean; runs?: boolean }) => {
      const plan = await openPlan(target);
      const rows = planStatus(plan, new RunStore(plan.out));
      const jobs = await slurmJobs(plan, rows);
      if (flags.json) {
        printJson({ out: plan.out, runs: rows, ...(jobs.length ? { slurm: jobs } : {}) });
        return;
      }
      process.stdout.write(`${plan.experiment}: ${plan.out}\n${stageTable(rows)}\n`);
      if (jobs.length) process.stdout.write(`\nSLURM jobs:\n${slurmJobsTable(jobs)}\n`);
      if (flags.runs)
        process.stdout.write(
          `\n${table(
            ['id', 'stage', 'name', 'state', 'waits on'],
            rows.map((r) => [r.id, r.stage, r.name, r.state, waits(r)]),
          )}\n`,
        );
      for (const f of failures(plan, rows)) process.stdout.write(`failed: ${f}\n`);
    });

  program
    .command('validate')
    .description('check an experiment YAML and plan it, without running or writing anything')
    .argument('<config>', 'experiment YAML')
    .option('--json', 'the plan as JSON')
    .action(async (file: string, flags: { json?: boolean }) => {
      const loaded = loadExperiment(file);
      const plan = await planExperiment(loaded, { out: experimentDir(loaded.config) });
      if (flags.json) {
        printJson(plan);
        return;
      }
      const counts = STAGES.map((s) => [s, plan.runs.filter((r) => r.stage === s).length] as const).filter(
        ([, n]) => n > 0,
      );
      process.stdout.write(
        `${file}: valid (${loaded.layout} layout); ${plan.runs.length} runs: ${counts.map(([s, n]) => `${n} ${s}`).join(', ')}\n`,
      );
      for (const note of plan.notes) process.stdout.write(`note: ${note}\n`);
    });

  const imports = program
    .command('import')
    .description('convert configs of other tools into an experiment YAML');
  imports
    .command('locomoset')
    .description('a LoCoMoSeT top-level config (models, dataset_names, random_states, metrics, n_samples)')
    .argument('<file>', 'the LoCoMoSeT YAML')
    .option('-o, --out <file>', 'where to write the experiment YAML (default: stdout)')
    .action((file: string, flags: { out?: string }) => {
      const { yaml, notes } = importLocomoset(file);
      if (flags.out) {
        writeFileAtomic(flags.out, yaml);
        process.stderr.write(`wrote ${flags.out}\n`);
      } else process.stdout.write(yaml);
      for (const n of notes) process.stderr.write(`note: ${n}\n`);
    });
}
