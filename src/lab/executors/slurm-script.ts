/**
 * The batch script of one job array: `#SBATCH` directives from the experiment's `executor.slurm` settings (the
 * stage's own resources over the common ones), `--array=0-N%P`, `--signal=USR2@<s>` so a run checkpoints and
 * requeues itself before its time limit, `--requeue`, and a body in which array task i reads the i-th run id of
 * runs.txt and executes it with `srun tlab run-one`, its output appended to the run's own log (runs/<id>/log.txt).
 */

import type { SlurmResources, SlurmSettings } from '../config/cluster-schema.ts';
import type { Stage } from '../plan/types.ts';

/** A word for the shell: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The resources a stage's jobs ask for: the stage's settings over the common ones; setup and extra lines add up. */
export function stageResources(settings: SlurmSettings, stage: Stage): SlurmResources {
  const own = settings.stages?.[stage] ?? {};
  const common: SlurmResources = {
    partition: settings.partition,
    account: settings.account,
    qos: settings.qos,
    time: settings.time,
    gpus: settings.gpus,
    cpus: settings.cpus,
    memory: settings.memory,
    constraint: settings.constraint,
  };
  const merged: SlurmResources = { ...common };
  for (const [k, v] of Object.entries(own)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  merged.extra = [...(settings.extra ?? []), ...(own.extra ?? [])];
  merged.setup = [...(settings.setup ?? []), ...(own.setup ?? [])];
  return merged;
}

export interface ArrayScriptInput {
  experiment: string;
  stage: Stage;
  /** The experiment folder (absolute). */
  out: string;
  /** This array's folder (absolute): runs.txt, the script and SLURM's own output files. */
  batchDir: string;
  /** Array tasks (runs.txt lines). */
  count: number;
  resources: SlurmResources;
  maxParallel?: number;
  signalSeconds: number;
  maxRequeues: number;
  /** Shell words that run tlab on the compute node. */
  tlab: string;
}

/** The sbatch script text (deterministic for the same input, so `--dry-run` prints what would be submitted). */
export function arrayScript(input: ArrayScriptInput): string {
  const r = input.resources;
  const q = shellQuote;
  const jobName = `tlab-${input.experiment}-${input.stage}`;
  const directives = [
    `--job-name=${jobName}`,
    `--array=0-${input.count - 1}${input.maxParallel ? `%${input.maxParallel}` : ''}`,
    `--output=${input.batchDir}/%A_%a.out`,
    '--open-mode=append',
    '--ntasks=1',
    '--requeue',
    `--signal=USR2@${input.signalSeconds}`,
    ...(r.partition ? [`--partition=${r.partition}`] : []),
    ...(r.account ? [`--account=${r.account}`] : []),
    ...(r.qos ? [`--qos=${r.qos}`] : []),
    ...(r.time ? [`--time=${r.time}`] : []),
    ...(r.cpus ? [`--cpus-per-task=${r.cpus}`] : []),
    ...(r.memory ? [`--mem=${r.memory}`] : []),
    ...(r.gpus !== undefined && r.gpus !== 0 ? [`--gpus=${r.gpus}`] : []),
    ...(r.constraint ? [`--constraint=${r.constraint}`] : []),
    ...(r.extra ?? []),
  ];
  const cpus = r.cpus ?? 1;
  return [
    '#!/bin/bash',
    `# transferlab: ${input.count} ${input.stage} run(s) of experiment ${input.experiment}; array task i runs line i+1 of runs.txt.`,
    ...directives.map((d) => `#SBATCH ${d}`),
    // Setup lines (module load, conda/venv activation) often read unset variables: -u only after them.
    'set -eo pipefail',
    ...(r.setup ?? []),
    'set -u',
    `run_id="$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" ${q(`${input.batchDir}/runs.txt`)})"`,
    'if [ -z "$run_id" ]; then echo "no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 1; fi',
    `log=${q(`${input.out}/runs/`)}"$run_id/log.txt"`,
    'mkdir -p "$(dirname "$log")"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell variables, expanded in the job
    'echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname), restart ${SLURM_RESTART_COUNT:-0}: run $run_id" >>"$log"',
    `export TLAB_THREADS=${cpus} TLAB_LINALG_THREADS=${cpus}`,
    // srun makes the run a job step, so --signal=USR2 and `scancel --signal=USR2` reach tlab itself.
    `srun --ntasks=1 --cpus-per-task=${cpus} ${input.tlab} run-one ${q(input.out)} "$run_id" --executor slurm --max-requeues ${input.maxRequeues} >>"$log" 2>&1`,
    '',
  ].join('\n');
}
