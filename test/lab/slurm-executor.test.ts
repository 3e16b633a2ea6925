/**
 * The SLURM executor without a cluster: squeue/sacct output parsing, the batch script (golden file), and the
 * executor's bookkeeping against a scripted scheduler — arrays per stage, splitting at max_array_size, waiting
 * through requeues, failing tasks that end without an outcome, adopting tasks still queued from an earlier
 * invocation, polling with doubling intervals — plus `--dry-run`'s rounds and `tlab status`'s job table.
 * test/lab/slurm-cluster.test.ts runs the same code against a real slurmctld.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { SlurmSettingsSchema } from '../../src/lab/config/cluster-schema.ts';
import { SlurmExecutor, submittedJobs } from '../../src/lab/executors/slurm.ts';
import type { SlurmCommands } from '../../src/lab/executors/slurm-commands.ts';
import { arrayScript, stageResources } from '../../src/lab/executors/slurm-script.ts';
import {
  classifyState,
  parseArrayIndices,
  parseJobStates,
  parseSbatchJobId,
  type TaskStatus,
} from '../../src/lab/executors/slurm-state.ts';
import { slurmJobs, slurmJobsTable } from '../../src/lab/executors/slurm-status.ts';
import { PLAN_SCHEMA, type Plan, type PlannedRun, type Stage } from '../../src/lab/plan/types.ts';
import { planStatus } from '../../src/lab/run.ts';
import { RunStore } from '../../src/lab/store.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-slurm-exec-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('squeue and sacct lines become per-task states; steps and other jobs are skipped, ranges expand', () => {
  const squeue = [
    '41_2|PENDING|JobArrayTaskLimit',
    '41_1|RUNNING|None',
    '41_0|COMPLETED|None',
    '410_0|RUNNING|None',
    '',
  ].join('\n');
  const s = parseJobStates(squeue, '41');
  assert.deepEqual(
    [...s.values()].sort((a, b) => a.index - b.index),
    [
      { index: 0, state: 'COMPLETED', detail: 'None' },
      { index: 1, state: 'RUNNING', detail: 'None' },
      { index: 2, state: 'PENDING', detail: 'JobArrayTaskLimit' },
    ],
  );
  const sacct = [
    '77_0|COMPLETED|0:0',
    '77_0.batch|COMPLETED|0:0',
    '77_1|CANCELLED by 0|0:15',
    '77_[2-4,7%2]|PENDING|0:0',
    '77_5|OUT_OF_MEMORY|0:125',
    '77_5|PENDING|0:0',
  ].join('\n');
  const a = parseJobStates(sacct, '77');
  assert.equal(a.get(1)?.state, 'CANCELLED');
  assert.deepEqual(
    [2, 3, 4, 7].map((i) => a.get(i)?.state),
    ['PENDING', 'PENDING', 'PENDING', 'PENDING'],
  );
  // A requeued task's attempts are listed in order: the last line is the current one.
  assert.equal(a.get(5)?.state, 'PENDING');
  assert.equal(a.has(6), false);
  assert.deepEqual(parseArrayIndices('0-9:3%4'), [0, 3, 6, 9]);
  assert.throws(() => parseArrayIndices('a-b'), /not a SLURM array index expression/);
  assert.equal(parseSbatchJobId('Submitted\n123;cluster\n'), '123');
  assert.throws(() => parseSbatchJobId('sbatch: error: Batch job submission failed'), /no job id/);
  for (const s of ['PENDING', 'RUNNING', 'REQUEUED', 'REQUEUE_HOLD', 'SUSPENDED', 'COMPLETING'])
    assert.equal(classifyState(s), 'active', s);
  assert.equal(classifyState('COMPLETED'), 'completed');
  for (const s of ['FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL'])
    assert.equal(classifyState(s), 'ended', s);
});

const GOLDEN = 'test/fixtures/lab/slurm/finetune.sbatch';

test('the batch script carries every resource setting, the stage override, USR2 and requeue (golden file)', () => {
  const settings = SlurmSettingsSchema.parse({
    partition: 'gpu',
    account: 'proj42',
    qos: 'normal',
    time: '2:00:00',
    cpus: 4,
    memory: '32G',
    extra: ['--exclusive'],
    setup: ['module load cuda/12.4'],
    max_parallel: 3,
    max_requeues: 5,
    signal_seconds: 120,
    stages: { finetune: { gpus: 'a100:2', time: '1-00:00:00', setup: ['source /opt/venv/bin/activate'] } },
  });
  const script = arrayScript({
    experiment: 'study',
    stage: 'finetune',
    out: '/scratch/exp/study',
    batchDir: '/scratch/exp/study/slurm/finetune-0123456789ab',
    count: 12,
    resources: stageResources(settings, 'finetune'),
    maxParallel: settings.max_parallel,
    signalSeconds: settings.signal_seconds,
    maxRequeues: settings.max_requeues,
    tlab: '/opt/node/bin/node /opt/transferlab/bin/tlab.js',
  });
  if (process.env.TLAB_UPDATE_GOLDEN) {
    mkdirSync(dirname(GOLDEN), { recursive: true });
    writeFileSync(GOLDEN, script);
  }
  assert.equal(script, readFileSync(GOLDEN, 'utf8'));
  // Stage resources replace the common ones; setup and extra lines add up; other stages keep the common ones.
  const data = stageResources(settings, 'data');
  assert.equal(data.gpus, undefined);
  assert.equal(data.time, '2:00:00');
  assert.deepEqual(stageResources(settings, 'finetune').setup, [
    'module load cuda/12.4',
    'source /opt/venv/bin/activate',
  ]);
});

test('slurm settings: bad values name the field and what is valid', () => {
  const bad = (doc: unknown) => SlurmSettingsSchema.safeParse(doc);
  assert.match(JSON.stringify(bad({ time: '2h' }).error?.issues), /minutes, MM:SS, HH:MM:SS/);
  assert.match(JSON.stringify(bad({ memory: '32GB' }).error?.issues), /32G/);
  assert.match(JSON.stringify(bad({ extra: ['#SBATCH --exclusive'] }).error?.issues), /one sbatch option/);
  assert.match(JSON.stringify(bad({ stages: { fine: { gpus: 1 } } }).error?.issues), /fine/);
  assert.match(JSON.stringify(bad({ poll_min_s: 10, poll_max_s: 1 }).error?.issues), /poll_min_s/);
  assert.equal(bad({}).success, true);
});

// ---- the executor against a scripted scheduler --------------------------------------------------------------

function runOf(stage: Stage, name: string, deps: string[] = []): PlannedRun {
  return {
    id: `${stage}-${name}`.padEnd(16, '0').slice(0, 16),
    stage,
    name,
    params: {},
    config: {},
    deps,
    outputs: [],
  };
}

function planOf(out: string, runs: PlannedRun[]): Plan {
  return {
    schema: PLAN_SCHEMA,
    experiment: 'fake',
    out,
    file: join(out, 'experiment.yaml'),
    base_dir: out,
    created_at: new Date(0).toISOString(),
    runs,
    notes: [],
  };
}

type Outcome =
  | 'done'
  | 'failed'
  | 'oom'
  | 'cancelled'
  | 'requeue'
  | 'self-requeue'
  | 'lost-requeue'
  | 'vanish';

/** The states squeue shows a task in, poll by poll, for each outcome. */
const STATES: Record<Outcome, string[]> = {
  done: ['PENDING', 'RUNNING', 'COMPLETED'],
  failed: ['RUNNING', 'FAILED'],
  oom: ['RUNNING', 'OUT_OF_MEMORY'],
  cancelled: ['PENDING', 'CANCELLED'],
  requeue: ['PENDING', 'RUNNING', 'REQUEUED', 'PENDING', 'RUNNING', 'COMPLETED'],
  // A task that requeued itself: squeue shows the attempt it cut short as FAILED for a while, then pending.
  'self-requeue': ['RUNNING', 'FAILED', 'FAILED', 'PENDING', 'RUNNING', 'COMPLETED'],
  'lost-requeue': ['RUNNING', 'FAILED'],
  vanish: ['RUNNING', 'GONE'],
};

/** Each run's task walks through states on successive queries; at its end the "job" writes the run's outcome. */
class FakeScheduler implements SlurmCommands {
  readonly submitted: { id: string; script: string; runs: string[] }[] = [];
  readonly queries: string[] = [];
  private tasks = new Map<
    string,
    { states: string[]; at: number; run: string; outcome: Outcome; stopped?: boolean }[]
  >();
  private next = 100;

  constructor(
    private readonly store: RunStore,
    private readonly outcomes: Record<string, Outcome>,
  ) {}

  async sbatch(scriptPath: string): Promise<string> {
    const runs = readFileSync(join(dirname(scriptPath), 'runs.txt'), 'utf8')
      .trim()
      .split('\n');
    const id = String(this.next++);
    this.submitted.push({ id, script: readFileSync(scriptPath, 'utf8'), runs });
    this.tasks.set(
      id,
      runs.map((run) => {
        const outcome = this.outcomes[run] ?? 'done';
        const states = STATES[outcome];
        return { states, at: -1, run, outcome };
      }),
    );
    return id;
  }

  /** A task already known to the scheduler (submitted by an earlier invocation). */
  adopt(id: string, runs: string[]): void {
    this.tasks.set(
      id,
      runs.map((run) => ({ states: ['RUNNING', 'COMPLETED'], at: -1, run, outcome: 'done' as const })),
    );
  }

  async query(arrayId: string): Promise<Map<number, TaskStatus> | null> {
    this.queries.push(arrayId);
    const tasks = this.tasks.get(arrayId);
    if (!tasks) return null;
    const out = new Map<number, TaskStatus>();
    tasks.forEach((t, index) => {
      t.at = Math.min(t.at + 1, t.states.length - 1);
      const state = t.states[t.at];
      if ((t.outcome === 'self-requeue' || t.outcome === 'lost-requeue') && t.at === 1 && !t.stopped) {
        t.stopped = true;
        this.stopForRequeue(t.run);
      }
      if (t.at === t.states.length - 1) this.finish(t.run, t.outcome);
      if (state !== 'GONE') out.set(index, { index, state, detail: null });
    });
    return out.size ? out : null;
  }

  async requeue(): Promise<void> {}

  /** What `tlab run-one` records when SIGUSR2 stops it and it requeues its job. */
  private stopForRequeue(id: string): void {
    const record = this.store.read(id)!;
    this.store.write({
      ...record,
      state: 'pending',
      finished_at: new Date(this.clock()).toISOString(),
      executor: { kind: 'slurm', interrupted: 'USR2', requeued_at: new Date(this.clock()).toISOString() },
    });
  }

  clock: () => number = Date.now;

  private finish(id: string, outcome: Outcome): void {
    const record = this.store.read(id);
    if (record?.state !== 'pending') return;
    if (outcome === 'done' || outcome === 'requeue' || outcome === 'self-requeue') {
      this.store.write({ ...record, state: 'running', started_at: new Date().toISOString() });
      this.store.finish(id, { ok: true });
    } else if (outcome === 'failed') this.store.fail(id, 'the stage raised', null);
    else {
      // Killed before recording anything: only its log says what happened.
      mkdirSync(this.store.dir(id), { recursive: true });
      writeFileSync(this.store.logPath(id), 'step 3 of 9\nKilled\n');
    }
  }
}

function setup(name: string, runs: PlannedRun[], outcomes: Record<string, Outcome>, settings: object = {}) {
  const out = join(root, name);
  const plan = planOf(out, runs);
  const store = new RunStore(out);
  for (const r of runs) store.ensure(r);
  const fake = new FakeScheduler(store, outcomes);
  const waits: number[] = [];
  // Scheduler time: each poll's wait moves it on.
  let now = Date.parse('2026-01-01T00:00:00Z');
  fake.clock = () => now;
  const executor = new SlurmExecutor(
    SlurmSettingsSchema.parse({ poll_min_s: 1, poll_max_s: 8, ...settings }),
    fake,
    async (ms) => {
      waits.push(ms);
      now += ms;
    },
    () => now,
  );
  return { out, plan, store, fake, waits, executor };
}

test('one array per stage, split at max_array_size; runs.txt in array order; every task waited on', async () => {
  const runs = [
    runOf('finetune', 'a'),
    runOf('finetune', 'b'),
    runOf('finetune', 'c'),
    runOf('eval', 'base'),
  ];
  const { plan, store, fake, executor } = setup('arrays', runs, {}, { max_array_size: 2, max_parallel: 2 });
  const started: string[] = [];
  const ended: string[] = [];
  await executor.runBatch(plan, runs, {
    quiet: true,
    onRunStart: (r) => started.push(r.name),
    onRunEnd: (r) => ended.push(r.name),
  });
  assert.deepEqual(
    fake.submitted.map((s) => s.runs.map((id) => runs.find((r) => r.id === id)!.name)),
    [['a', 'b'], ['c'], ['base']],
  );
  assert.match(fake.submitted[0].script, /^#SBATCH --array=0-1%2$/m);
  assert.match(fake.submitted[1].script, /^#SBATCH --array=0-0%2$/m);
  assert.match(fake.submitted[2].script, /^#SBATCH --job-name=tlab-fake-eval$/m);
  assert.deepEqual(started.sort(), ['a', 'b', 'base', 'c']);
  assert.deepEqual(ended.sort(), ['a', 'b', 'base', 'c']);
  for (const r of runs) {
    const record = store.read(r.id)!;
    assert.equal(record.state, 'done', r.name);
    assert.equal(record.executor?.state, 'COMPLETED');
    assert.match(record.executor?.job_id ?? '', /^\d+_\d$/);
  }
  const jobs = submittedJobs(plan.out);
  assert.equal(jobs.get(runs[2].id)?.arrayId, fake.submitted[1].id);
  assert.equal(jobs.get(runs[1].id)?.index, 1);
});

test('requeued tasks are waited through; tasks that end without an outcome are failed with the state and log', async () => {
  const runs = ['ok', 'requeued', 'recorded', 'oom', 'cancelled', 'vanished', 'self-requeued', 'lost'].map(
    (n) => runOf('finetune', n),
  );
  const outcomes: Record<string, Outcome> = {
    [runs[1].id]: 'requeue',
    [runs[6].id]: 'self-requeue',
    [runs[7].id]: 'lost-requeue',
    [runs[2].id]: 'failed',
    [runs[3].id]: 'oom',
    [runs[4].id]: 'cancelled',
    [runs[5].id]: 'vanish',
  };
  const { plan, store, executor, waits } = setup('outcomes', runs, outcomes);
  await executor.runBatch(plan, runs, { quiet: true });
  const rec = (i: number) => store.read(runs[i].id)!;
  assert.equal(rec(0).state, 'done');
  assert.equal(rec(1).state, 'done');
  assert.equal(rec(2).state, 'failed');
  assert.equal(rec(2).error, 'the stage raised');
  assert.equal(rec(3).state, 'failed');
  assert.match(
    rec(3).error!,
    /^SLURM job \d+_3 ended OUT_OF_MEMORY without recording an outcome for finetune run oom/,
  );
  assert.match(rec(3).log_tail!, /Killed/);
  assert.match(rec(4).error!, /ended CANCELLED/);
  assert.match(rec(5).error!, /is no longer known to the scheduler/);
  // A task that requeued itself is not taken for failed while squeue still shows the attempt it cut short.
  assert.equal(rec(6).state, 'done', rec(6).error ?? '');
  // ...but one that never comes back is failed once the grace period is over.
  assert.equal(rec(7).state, 'failed');
  assert.match(rec(7).error!, /ended FAILED without recording an outcome for finetune run lost/);
  // Polling backs off: 1 s, doubling, capped at poll_max_s (8 s).
  assert.deepEqual(waits.slice(0, 5), [1000, 2000, 4000, 8000, 8000]);
  // Failed runs block what depends on them.
  const downstream = runOf('eval', 'x', [runs[3].id]);
  const rows = planStatus(planOf(plan.out, [...runs, downstream]), store);
  assert.equal(rows.at(-1)?.state, 'blocked');
});

test('a run whose task is still queued from an earlier invocation is waited on, not submitted again', async () => {
  const runs = [runOf('eval', 'm1'), runOf('eval', 'm2')];
  const { plan, fake, store, executor } = setup('adopt', runs, {});
  // An earlier `tlab run` submitted m1 as task 0 of array 55 and stopped.
  const dir = join(plan.out, 'slurm', 'eval-earlier');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'job.json'),
    JSON.stringify({
      array_id: '55',
      stage: 'eval',
      runs: [runs[0].id],
      submitted_at: '2026-01-01T00:00:00Z',
    }),
  );
  fake.adopt('55', [runs[0].id]);
  await executor.runBatch(plan, runs, { quiet: true });
  assert.deepEqual(
    fake.submitted.map((s) => s.runs),
    [[runs[1].id]],
  );
  assert.ok(fake.queries.includes('55'));
  assert.equal(store.read(runs[0].id)?.state, 'done');
  assert.equal(store.read(runs[0].id)?.executor?.job_id, '55_0');
});

test('dry run: the arrays of every round, in dependency order, without submitting anything', () => {
  const data = runOf('data', 't');
  const ft = [runOf('finetune', 'a', [data.id]), runOf('finetune', 'b', [data.id])];
  const ev = runOf('eval', 'a', [ft[0].id]);
  const runs = [data, ...ft, ev];
  const { plan, store, fake, executor } = setup('dry', runs, {});
  const text = executor.dryRun(plan, planStatus(plan, store), new Set(runs.map((r) => r.id)));
  const rounds = [...text.matchAll(/^# ---- round (\d+): (\w+), (\d+) run/gm)].map((m) =>
    m.slice(1).join(' '),
  );
  assert.deepEqual(rounds, ['1 data 1', '2 finetune 2', '3 eval 1']);
  assert.match(text, /#SBATCH --array=0-1\n/);
  assert.match(
    text,
    /srun --ntasks=1 --cpus-per-task=1 .* run-one .* "\$run_id" --executor slurm --max-requeues 3/,
  );
  assert.equal(fake.submitted.length, 0);
  assert.equal(existsSync(join(plan.out, 'slurm')), false);
  // Done runs are not shown again.
  store.write({ ...store.read(data.id)!, state: 'done' });
  const later = executor.dryRun(plan, planStatus(plan, store), new Set(runs.map((r) => r.id)));
  assert.match(later, /^# ---- round 1: finetune, 2 run/m);
});

test('tlab status: job ids, run states, the scheduler state of live tasks and the recorded one of finished tasks', async () => {
  const runs = [runOf('finetune', 'live'), runOf('finetune', 'over')];
  const { plan, store, fake } = setup('status', runs, {});
  const dir = join(plan.out, 'slurm', 'finetune-x');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'job.json'),
    JSON.stringify({
      array_id: '9',
      stage: 'finetune',
      runs: runs.map((r) => r.id),
      submitted_at: '2026-01-01T00:00:00Z',
    }),
  );
  store.write({
    ...store.read(runs[1].id)!,
    state: 'done',
    executor: { kind: 'slurm', job_id: '9_1', array_index: 1, requeues: 2, state: 'COMPLETED' },
  });
  const commands: SlurmCommands = {
    ...fake,
    sbatch: fake.sbatch.bind(fake),
    requeue: fake.requeue.bind(fake),
    query: async () => new Map([[0, { index: 0, state: 'PENDING', detail: 'BeginTime' }]]),
  };
  const jobs = await slurmJobs(plan, planStatus(plan, store), commands);
  assert.deepEqual(
    jobs.map((j) => [j.job_id, j.name, j.state, j.slurm_state, j.requeues]),
    [
      ['9_0', 'live', 'pending', 'PENDING (BeginTime)', null],
      ['9_1', 'over', 'done', 'COMPLETED', 2],
    ],
  );
  assert.match(slurmJobsTable(jobs), /^9_0\s+finetune\s+live\s+pending\s+PENDING \(BeginTime\)\s+-$/m);
});
