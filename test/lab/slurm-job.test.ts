/**
 * What a SLURM array task does when the scheduler signals it, in-process with the real trainer (the scheduler's
 * commands scripted): USR2 stops training between steps with a checkpoint, puts the run back to pending and
 * requeues the job; its next start resumes and ends with the same weights and losses as a run never stopped. TERM
 * stops it the same way without requeueing; a job requeued past max_requeues fails with that reason.
 * test/lab/slurm-cluster.test.ts sends the same signals through a real slurmctld.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadExperiment } from '../../src/lab/config/load.ts';
import { executeRun } from '../../src/lab/execute-run.ts';
import type { SlurmCommands } from '../../src/lab/executors/slurm-commands.ts';
import { runSlurmTask } from '../../src/lab/executors/slurm-job.ts';
import { planExperiment } from '../../src/lab/plan/plan.ts';
import type { Plan, PlannedRun } from '../../src/lab/plan/types.ts';
import { RunStore } from '../../src/lab/store.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-slurm-job-'));
after(() => rmSync(root, { recursive: true, force: true }));

const STEPS = 120;
const experiment = join(root, 'experiment.yaml');
writeFileSync(
  experiment,
  `name: preempt
tasks:
  grid:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 48, test: 4 }, rows: 1, cols: 1, vocab_subset_size: 4, modality: text, questions_per_image: 1 }
    dedupe: false
models:
  base:
    pretrain:
      task: grid
      config: { model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2 }
      seq_len: 48
      training: { max_steps: ${STEPS}, batch_size: 8, lr: 0.003 }
report: false
`,
);

/** The plan in `out` with its data built; returns the pretrain run. */
async function prepared(out: string): Promise<{ plan: Plan; pretrain: PlannedRun }> {
  const plan = await planExperiment(loadExperiment(experiment), { out });
  const data = plan.runs.find((r) => r.stage === 'data')!;
  assert.equal((await executeRun(plan, data, { quiet: true })).state, 'done');
  return { plan, pretrain: plan.runs.find((r) => r.stage === 'pretrain')! };
}

function scheduler(): SlurmCommands & { requeued: string[] } {
  const requeued: string[] = [];
  return {
    requeued,
    sbatch: async () => '1',
    query: async () => null,
    requeue: async (id) => void requeued.push(id),
  };
}

const env = (restarts: number) => ({
  SLURM_JOB_ID: '8',
  SLURM_ARRAY_JOB_ID: '7',
  SLURM_ARRAY_TASK_ID: '0',
  SLURM_RESTART_COUNT: String(restarts),
});

/** Emits `signal` once the run has logged `lines` training steps. */
function signalAfter(signals: EventEmitter, metrics: string, lines: number, signal: string): () => void {
  const timer = setInterval(() => {
    if (existsSync(metrics) && readFileSync(metrics, 'utf8').trim().split('\n').length >= lines) {
      clearInterval(timer);
      signals.emit(signal);
    }
  }, 20);
  return () => clearInterval(timer);
}

const metricsOf = (out: string) => join(out, 'zoo_logs', 'base', 'metrics.jsonl');
const lossesOf = (out: string) =>
  readFileSync(metricsOf(out), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; split: string; loss: number })
    .filter((r) => r.split === 'train');

test('USR2: checkpoint, pending, scontrol requeue; the requeued start resumes to the uninterrupted result', async () => {
  const ref = await prepared(join(root, 'reference'));
  assert.equal((await executeRun(ref.plan, ref.pretrain, { quiet: true })).state, 'done');

  const out = join(root, 'usr2');
  const { plan, pretrain } = await prepared(out);
  const signals = new EventEmitter();
  const commands = scheduler();
  const stop = signalAfter(signals, metricsOf(out), 5, 'SIGUSR2');
  const first = await runSlurmTask(plan, pretrain, {
    maxRequeues: 2,
    quiet: true,
    env: env(0),
    commands,
    signals,
  });
  stop();
  assert.equal(first.how, 'requeued');
  assert.deepEqual(commands.requeued, ['8']);
  const pending = new RunStore(out).read(pretrain.id)!;
  assert.equal(pending.state, 'pending');
  assert.match(String(pending.executor?.interrupted), /USR2/);
  assert.equal(pending.executor?.job_id, '7_0');
  const stoppedAt = lossesOf(out).at(-1)!.step;
  assert.ok(stoppedAt < STEPS, `stopped at step ${stoppedAt}`);
  assert.ok(existsSync(join(out, 'checkpoints', 'zoo-base', pretrain.id, 'latest')));

  const second = await runSlurmTask(plan, pretrain, {
    maxRequeues: 2,
    quiet: true,
    env: env(1),
    commands,
    signals,
  });
  assert.equal(second.how, 'finished');
  assert.equal(second.record.state, 'done');
  assert.equal(second.record.executor?.requeues, 1);
  const resumed = second.record.result as { resumed_from: number; steps: number };
  assert.equal(resumed.steps, STEPS);
  assert.ok(resumed.resumed_from > 0 && resumed.resumed_from <= stoppedAt, JSON.stringify(resumed));
  // The same model and loss curve as the run that was never stopped.
  assert.deepEqual(
    readFileSync(join(out, 'zoo', 'base', 'model.safetensors')),
    readFileSync(join(ref.plan.out, 'zoo', 'base', 'model.safetensors')),
  );
  const byStep = (rows: { step: number; loss: number }[]) => new Map(rows.map((r) => [r.step, r.loss]));
  assert.deepEqual(byStep(lossesOf(out)), byStep(lossesOf(ref.plan.out)));
  assert.equal(commands.requeued.length, 1);
});

test('TERM: the run checkpoints and goes back to pending; the scheduler, not the job, decides what comes next', async () => {
  const out = join(root, 'term');
  const { plan, pretrain } = await prepared(out);
  const signals = new EventEmitter();
  const commands = scheduler();
  const stop = signalAfter(signals, metricsOf(out), 1, 'SIGTERM');
  const r = await runSlurmTask(plan, pretrain, {
    maxRequeues: 2,
    quiet: true,
    env: env(0),
    commands,
    signals,
  });
  stop();
  assert.equal(r.how, 'stopped');
  assert.equal(r.record.state, 'pending');
  assert.match(String(r.record.executor?.interrupted), /TERM/);
  assert.deepEqual(commands.requeued, []);
  assert.ok(existsSync(join(out, 'checkpoints', 'zoo-base', pretrain.id, 'latest')));
});

test('past max_requeues a run fails with the reason, whether requeued from outside or asking for one more', async () => {
  const out = join(root, 'limit');
  const { plan, pretrain } = await prepared(out);
  const commands = scheduler();
  const over = await runSlurmTask(plan, pretrain, {
    maxRequeues: 2,
    quiet: true,
    env: env(3),
    commands,
    signals: new EventEmitter(),
  });
  assert.equal(over.how, 'over-requeue-limit');
  assert.equal(over.record.state, 'failed');
  assert.match(over.record.error!, /requeued 3 times, more than executor\.slurm\.max_requeues \(2\)/);
  assert.equal(existsSync(metricsOf(out)), false, 'it did not train');

  new RunStore(out).reset(pretrain.id);
  const signals = new EventEmitter();
  const stop = signalAfter(signals, metricsOf(out), 1, 'SIGUSR2');
  const last = await runSlurmTask(plan, pretrain, {
    maxRequeues: 2,
    quiet: true,
    env: env(2),
    commands,
    signals,
  });
  stop();
  assert.equal(last.record.state, 'failed');
  assert.match(
    last.record.error!,
    /after 2 requeue\(s\); requeueing it again would exceed executor\.slurm\.max_requeues \(2\)/,
  );
  assert.deepEqual(commands.requeued, []);
});
