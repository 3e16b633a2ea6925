/**
 * The finetune stage through an external trainer (`finetuning.external`): writes the task's training split in the
 * trainer's format and its config under external/<run>/, launches it (`tune run`, `trl sft`, or `tlab finetune`
 * in a subprocess) with its output in external/<run>/trainer.log, and checks that a model came back in
 * finetuned_checkpoints/<run>/: torchtune's epoch_N/ folders (Hugging Face layout, LoRA merged), TRL's output
 * folder (a model, or a PEFT adapter for LoRA), or tlab's model folder. It runs wherever the run runs: in this
 * process's machine, or on a compute node as a SLURM array task (give that stage GPUs with
 * executor.slurm.stages.finetune). Stopped early (pre-emption), it stops the trainer; running it again resumes
 * where the trainer can (tlab: its last checkpoint; torchtune: resume_from_checkpoint when recipe_state exists).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTaskManifest } from '../../data/read.ts';
import type { TrainConfig } from '../../train/config.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { inExperiment, runWhere, type StageContext, type StageResult } from '../stages/context.ts';
import { writeTrainerDataset } from './datasets.ts';
import type { ExternalJob, FinetuneRunConfig, TrainerLaunch } from './job.ts';
import { runLogged } from './process.ts';
import { pythonYaml } from './python-yaml.ts';
import { lastTorchtuneStep, torchtuneLaunch } from './torchtune.ts';
import { lastTrlLoss, trlLaunch } from './trl.ts';

const TLAB_BIN = fileURLToPath(new URL('../../../bin/tlab.js', import.meta.url));

/** The run's external trainer, or null when it trains in-process. */
export function externalTrainerOf(ctx: StageContext): FinetuneRunConfig['external'] | null {
  return (ctx.run.config as Partial<FinetuneRunConfig>).external ?? null;
}

/** The job of a finetune run (paths, steps) — what every trainer kind starts from. */
export function externalJob(ctx: StageContext): ExternalJob {
  const c = ctx.run.config as unknown as FinetuneRunConfig;
  const settings = c.external;
  const where = runWhere(ctx);
  if (!settings) throw new Error(`unreachable: ${where} has no external trainer`);
  const taskDir = join(ctx.plan.out, 'formatted_datasets', c.task);
  const rows = readTaskManifest(taskDir).splits.train?.rows;
  if (!rows) throw new TlabError(`${where}: ${taskDir} has no train split`);
  const t = c.training;
  const steps =
    t.max_steps ??
    (t.epochs !== undefined ? Math.max(1, Math.ceil((t.epochs * rows) / t.batch_size)) : undefined);
  if (steps === undefined) throw new TlabError(`${where}: finetuning.training: give max_steps or epochs`);
  const work = join(ctx.plan.out, 'external', ctx.run.name);
  return {
    run: ctx.run.name,
    config: c,
    settings,
    fromDir: inExperiment(ctx, c.from),
    taskDir,
    steps,
    trainRows: rows,
    ngpu: settings.ngpu ?? 1,
    paths: {
      work,
      dataset: join(work, 'train.jsonl'),
      config: join(work, `${settings.trainer}.yaml`),
      log: join(work, 'trainer.log'),
      output: join(ctx.plan.out, 'finetuned_checkpoints', ctx.run.name),
      logs: join(ctx.plan.out, 'finetune_logs', ctx.run.name),
    },
  };
}

/** `tlab finetune` on the same TrainConfig the in-process trainer would run, its folders under external/<run>/tlab. */
export function tlabLaunch(job: ExternalJob, train: TrainConfig): TrainerLaunch {
  const config = { ...train, name: job.run, out: join(job.paths.work, 'tlab') } as Record<string, unknown>;
  const program = job.settings.command ?? [process.execPath, TLAB_BIN];
  return { config, dataset: null, argv: [...program, 'finetune', job.paths.config, '--quiet'] };
}

/** What each trainer kind launches (and the config it writes) for a job. */
export function trainerLaunch(job: ExternalJob, train: TrainConfig | null, where: string): TrainerLaunch {
  if (job.settings.trainer === 'torchtune') return torchtuneLaunch(job, where);
  if (job.settings.trainer === 'trl') return trlLaunch(job, where);
  if (!train) throw new Error(`unreachable: ${where}: the tlab trainer needs the run's TrainConfig`);
  return tlabLaunch(job, train);
}

function latestEpoch(dir: string): string | null {
  if (!existsSync(dir)) return null;
  const epochs = readdirSync(dir)
    .map((n) => ({ n, m: /^(?:epoch|step)_(\d+)$/.exec(n) }))
    .filter((x) => x.m && existsSync(join(dir, x.n, 'config.json')))
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]));
  return epochs.length ? epochs[epochs.length - 1].n : null;
}

function replaceDir(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(join(to, '..'), { recursive: true });
  renameSync(from, to);
}

/** Runs the finetune run through its external trainer (see the module comment). */
export async function runExternalFinetune(
  ctx: StageContext,
  train: TrainConfig | null,
): Promise<StageResult> {
  const where = runWhere(ctx);
  const job = externalJob(ctx);
  const launch = trainerLaunch(job, train, where);
  mkdirSync(job.paths.work, { recursive: true });
  if (launch.dataset) await writeTrainerDataset(launch.dataset, job.taskDir, 'train', job.paths.dataset);
  writeFileAtomic(
    job.paths.config,
    `# Written by transferlab for run ${job.run} (${job.settings.trainer}); launch: ${launch.argv.join(' ')}\n${pythonYaml(launch.config)}`,
  );
  const env = { ...process.env, ...(job.settings.env ?? {}) };
  if (!ctx.quiet) process.stderr.write(`${job.run}: ${launch.argv.join(' ')} (log ${job.paths.log})\n`);
  await runLogged(launch.argv, {
    cwd: job.paths.work,
    env,
    logPath: job.paths.log,
    what: `${where}: external trainer ${job.settings.trainer}`,
    signal: ctx.signal,
  });

  const result: StageResult = {
    trainer: job.settings.trainer,
    command: launch.argv.join(' '),
    config: job.paths.config,
    steps: job.steps,
  };
  if (job.settings.trainer === 'tlab') {
    const out = join(job.paths.work, 'tlab');
    const model = join(out, 'models', job.run);
    if (!existsSync(join(model, 'config.json')))
      throw new TlabError(`${where}: tlab finetune exited 0 but wrote no model folder at ${model}`);
    replaceDir(model, job.paths.output);
    // A LoRA fine-tune's adapter in PEFT's layout, beside the merged model.
    if (existsSync(`${model}-adapter`)) replaceDir(`${model}-adapter`, `${job.paths.output}-adapter`);
    const logs = join(out, 'logs', job.run);
    if (existsSync(logs)) replaceDir(logs, job.paths.logs);
    const metrics = existsSync(join(job.paths.logs, 'metrics.jsonl'))
      ? readFileSync(join(job.paths.logs, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { split?: string; loss?: number; step?: number })
          .filter((r) => r.split === 'train')
      : [];
    return { ...result, checkpoint: job.paths.output, train_loss: metrics.at(-1)?.loss ?? null };
  }
  if (job.settings.trainer === 'torchtune') {
    const epoch = latestEpoch(job.paths.output);
    if (!epoch)
      throw new TlabError(
        `${where}: torchtune exited 0 but wrote no epoch_N/ folder with config.json under ${job.paths.output}`,
      );
    const last = lastTorchtuneStep(job.paths.logs);
    return { ...result, checkpoint: join(job.paths.output, epoch), train_loss: last?.loss ?? null };
  }
  const model = existsSync(join(job.paths.output, 'config.json'));
  const adapter = existsSync(join(job.paths.output, 'adapter_config.json'));
  if (!model && !adapter)
    throw new TlabError(
      `${where}: trl sft exited 0 but ${job.paths.output} holds neither a model (config.json) nor a PEFT adapter (adapter_config.json)`,
    );
  return {
    ...result,
    checkpoint: job.paths.output,
    format: model ? 'model' : 'peft-adapter',
    train_loss: lastTrlLoss(job.paths.output)?.loss ?? null,
  };
}
