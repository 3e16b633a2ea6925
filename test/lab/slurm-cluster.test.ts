/**
 * The SLURM executor on a real single-node cluster (scripts/slurm-local.sh: slurmctld, slurmd and munged on this
 * machine). A reduced grid — a task, a zoo model pre-trained on it, two fine-tunes (seeds 0 and 1), their
 * evaluation and the summary — runs inline and then as job arrays; while both fine-tunes train, one is pre-empted
 * with `scancel --signal=USR2` (it checkpoints and requeues itself) and the other is requeued from outside with
 * `scontrol requeue` (TERM: it checkpoints and stops); both resume when their jobs start again. Every result —
 * model weights, loss curves, the eval grid, results.csv — must equal the inline run's.
 *
 * The test is skipped, saying why, only where scripts/slurm-local.sh cannot run (exit code 2: not root, no
 * apt-get); any other failure to bring the cluster up fails it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RunRecord } from '../../src/lab/store.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-slurm-cluster-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Starts (or finds) the local cluster: its SLURM_CONF, or why it cannot run here. */
function cluster(): { conf: string } | { skip: string } {
  const r = spawnSync('bash', ['scripts/slurm-local.sh', 'start'], { encoding: 'utf8', timeout: 600_000 });
  if (r.status === 2)
    return { skip: `scripts/slurm-local.sh cannot run here: ${r.stderr.trim().split('\n').at(-1)}` };
  assert.equal(r.status, 0, `scripts/slurm-local.sh failed (exit ${r.status}):\n${r.stderr}`);
  const conf = /^export SLURM_CONF=(.+)$/m.exec(r.stdout)?.[1];
  assert.ok(conf, `scripts/slurm-local.sh printed no SLURM_CONF:\n${r.stdout}`);
  return { conf };
}

const STEPS = 400;
const experiment = join(root, 'experiment.yaml');
writeFileSync(
  experiment,
  `name: cluster
tasks:
  grid:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 64, test: 8 }, rows: 1, cols: 1, vocab_subset_size: 4, modality: text, questions_per_image: 1 }
    dedupe: false
models:
  base:
    pretrain:
      task: grid
      config: { model_type: gpt2, n_layer: 1, n_embd: 16, n_head: 2 }
      seq_len: 48
      training: { max_steps: 8, batch_size: 8, lr: 0.003 }
finetuning:
  strategies: [full]
  seeds: [0, 1]
  training: { max_steps: ${STEPS}, batch_size: 8, lr: 0.003 }
evals: { batch_size: 8, bootstrap: 20, inference: { max_tokens: 4 } }
executor:
  kind: slurm
  slurm: { poll_min_s: 0.5, poll_max_s: 1, max_requeues: 2, cpus: 1 }
report: false
`,
);

const tlabArgs = (args: string[]) => ['bin/tlab.js', ...args];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves after `ms` without keeping the process alive once the test is over. */
const giveUpAfter = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());

function records(out: string, stage: string): RunRecord[] {
  const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as {
    runs: { id: string; stage: string }[];
  };
  return plan.runs
    .filter((r) => r.stage === stage)
    .map((r) => {
      const path = join(out, 'runs', r.id, 'run.json');
      return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as RunRecord) : null;
    })
    .filter((r): r is RunRecord => r !== null)
    .sort((a, b) => a.name.localeCompare(b.name));
}

const steps = (out: string, name: string) => {
  const path = join(out, 'finetune_logs', name, 'metrics.jsonl');
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').length : 0;
};

async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => T | null | undefined | false,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

test('a reduced grid through real SLURM job arrays, pre-empted and requeued mid-training, equals the inline run', async (t) => {
  const c = cluster();
  if ('skip' in c) {
    t.skip(c.skip);
    return;
  }
  const env = { ...process.env, SLURM_CONF: c.conf };
  const slurm = (args: string[]) => {
    const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', env });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  // The inline reference.
  const inline = join(root, 'inline');
  const ref = spawnSync(
    process.execPath,
    tlabArgs(['run', experiment, '--out', inline, '--executor', 'inline', '--quiet']),
    {
      encoding: 'utf8',
      env,
    },
  );
  assert.equal(ref.status, 0, ref.stderr);

  // The same grid through SLURM.
  const out = join(root, 'slurm');
  const child = spawn(process.execPath, tlabArgs(['run', experiment, '--out', out, '--quiet']), { env });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    // Both fine-tunes under way (their arrays' tasks running, some steps logged, neither finished).
    const [ft0, ft1] = await until('both fine-tunes to be training', 300_000, () => {
      const ft = existsSync(join(out, 'plan.json')) ? records(out, 'finetune') : [];
      return ft.length === 2 &&
        ft.every((r) => r.state === 'running' && r.executor?.job_id && steps(out, r.name) >= 20)
        ? ft
        : null;
    });
    assert.ok(steps(out, ft0.name) < STEPS && steps(out, ft1.name) < STEPS, 'both still training');
    slurm(['scancel', '--signal=USR2', ft0.executor!.job_id!]);
    slurm(['scontrol', 'requeue', ft1.executor!.job_id!]);
    // SLURM keeps a requeued job pending (reason BeginTime) for about two minutes; release both now.
    for (const r of [ft0, ft1]) {
      const job = r.executor!.job_id!;
      await until(`${job} to be requeued`, 120_000, () =>
        /PENDING\|BeginTime/.test(slurm(['squeue', '-h', '-r', '--states=all', '-j', job, '-o', '%T|%r'])),
      );
      slurm(['scontrol', 'update', `JobId=${job}`, 'StartTime=now']);
    }
    const code = await Promise.race([exited, giveUpAfter(480_000)]);
    assert.equal(code, 0, `tlab run --executor slurm: ${code}\n${stderr}`);
  } finally {
    child.kill('SIGKILL');
  }

  // Each fine-tune was stopped once, resumed from its checkpoint and finished.
  const ft = records(out, 'finetune');
  const logs = ft.map((r) => readFileSync(join(out, 'runs', r.id, 'log.txt'), 'utf8'));
  assert.match(logs[0], /SIGUSR2 received/);
  assert.match(logs[1], /SIGTERM received/);
  for (const r of ft) {
    assert.equal(r.state, 'done', r.name);
    assert.equal(r.executor?.kind, 'slurm');
    assert.equal(r.executor?.requeues, 1, `${r.name} was requeued once`);
    assert.equal(r.executor?.state, 'COMPLETED');
    const result = r.result as { resumed_from: number; steps: number };
    assert.ok(
      result.resumed_from > 0 && result.resumed_from < STEPS,
      `${r.name} resumed: ${JSON.stringify(result)}`,
    );
    assert.equal(result.steps, STEPS);
  }
  for (const stage of ['data', 'pretrain', 'eval', 'summary'])
    for (const r of records(out, stage)) {
      assert.equal(r.state, 'done', `${stage} ${r.name}`);
      assert.match(r.executor?.job_id ?? '', /^\d+_\d+$/, `${stage} ${r.name} ran as an array task`);
    }

  // Identical results.
  for (const r of ft) {
    const file = (dir: string) =>
      readFileSync(join(dir, 'finetuned_checkpoints', r.name, 'model.safetensors'));
    assert.deepEqual(file(out), file(inline), `${r.name}: same weights`);
    const losses = (dir: string) =>
      readFileSync(join(dir, 'finetune_logs', r.name, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: number; split: string; loss: number })
        .filter((x) => x.split === 'train')
        .map((x) => [x.step, x.loss]);
    assert.deepEqual(
      new Map(losses(out) as [number, number][]),
      new Map(losses(inline) as [number, number][]),
    );
  }
  const scores = (dir: string) =>
    (
      JSON.parse(readFileSync(join(dir, 'eval_grid_results.json'), 'utf8')) as {
        model: string;
        task: string;
        score: number;
      }[]
    )
      .map((x) => [x.model, x.task, x.score])
      .sort();
  assert.deepEqual(scores(out), scores(inline));
  assert.ok(
    scores(inline).some((s) => Number(s[2]) > 0),
    'the fine-tunes learned something, so equality means something',
  );
  assert.equal(
    readFileSync(join(out, 'results.csv'), 'utf8'),
    readFileSync(join(inline, 'results.csv'), 'utf8'),
  );

  // tlab status lists the jobs with SLURM's final state and the requeues.
  const status = spawnSync(process.execPath, tlabArgs(['status', out]), { encoding: 'utf8', env });
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /^SLURM jobs:$/m);
  for (const r of ft)
    assert.match(
      status.stdout,
      new RegExp(`^${r.executor!.job_id}\\s+finetune\\s+${r.name}\\s+done\\s+COMPLETED\\s+1$`, 'm'),
    );
});
