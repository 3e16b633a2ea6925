/**
 * The experiment planner's overhead on a big grid: planning a study of about 10,000 runs (25 zoo models × 10 tasks
 * × full + 3 LoRA ranks × 5 seeds, each fine-tuned model evaluated, estimators on every model × task) and reading its
 * status back from 10,000 run.json files (half of them done), against the same work in Python in the same run: the
 * cartesian product of the same axes with a SHA-256 of each run's canonical JSON config (as LoCoMoSeT's
 * config generation does, plus content addressing), and reading the same run files
 * (bench/reference/lab_python.py). Target: plan + status under 2 s.
 *
 * With --experiment <dir> it also prints the wall time by stage of a finished experiment (e.g. the quickstart's,
 * experiments/quickstart) from its run records.
 *
 *   npm run bench -- lab [--experiment experiments/quickstart]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../src/lab/config/load.ts';
import { planExperiment } from '../src/lab/plan/plan.ts';
import { planStatus } from '../src/lab/run.ts';
import { type RunRecord, RunStore } from '../src/lab/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-lab-'));
const MODELS = 25;
const TASKS = 10;
const RANKS = [4, 8, 16];
const SEEDS = [0, 1, 2, 3, 4];

function experiment(): Record<string, unknown> {
  const tasks: Record<string, unknown> = {};
  for (let t = 0; t < TASKS; t++)
    tasks[`task${t}`] = {
      dataset: 'synthetic:grid-world',
      generator: {
        splits: { train: 100, test: 10 },
        rows: 1,
        cols: 1 + (t % 3),
        modality: 'text',
        questions_per_image: 1,
      },
    };
  const models: Record<string, unknown> = {};
  for (let m = 0; m < MODELS; m++)
    models[`model${m}`] = {
      pretrain: {
        task: `task${m % TASKS}`,
        config: { model_type: 'gpt2', n_layer: 1 + (m % 4), n_embd: 32, n_head: 4 },
        training: { max_steps: 100 },
      },
    };
  return {
    name: 'big',
    out: join(dir, 'exp'),
    tasks,
    models,
    finetuning: { strategies: ['full'], lora_ranks: RANKS, seeds: SEEDS, training: { max_steps: 100 } },
    evals: { nb_eval_samples: 100 },
    metrics: { estimators: ['logme', 'hscore'], target_tasks: Object.keys(tasks) },
  };
}

try {
  const doc = experiment();
  const loaded = parseExperiment(doc, join(dir, 'big.yaml'));
  let t0 = performance.now();
  const plan = await planExperiment(loaded, { out: join(dir, 'exp') });
  const planSeconds = (performance.now() - t0) / 1000;
  // Half the runs done, as in a study under way (written outside the timing).
  const store = new RunStore(plan.out);
  plan.runs.forEach((r, i) => {
    const record: RunRecord = store.ensure(r);
    if (i % 2 === 0) store.write({ ...record, state: 'done', finished_at: new Date().toISOString() });
  });
  t0 = performance.now();
  const rows = planStatus(plan, store);
  const statusSeconds = (performance.now() - t0) / 1000;
  const done = rows.filter((r) => r.state === 'done').length;

  const py = spawnSync('/usr/bin/python3', ['bench/reference/lab_python.py', join(dir, 'exp', 'runs')], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2' },
  });
  if (py.status !== 0) throw new Error(`reference failed:\n${py.stderr}`);
  const ref = JSON.parse(py.stdout.trim().split('\n').pop()!) as {
    runs: number;
    plan: number;
    status: number;
  };

  console.log(`${plan.runs.length} runs (${done} done); Python's grid: ${ref.runs} runs`);
  console.log(`plan    ${planSeconds.toFixed(3)} s   (Python product + hashes ${ref.plan.toFixed(3)} s)`);
  console.log(
    `status  ${statusSeconds.toFixed(3)} s   (Python reading the run files ${ref.status.toFixed(3)} s)`,
  );
  const ours = planSeconds + statusSeconds;
  console.log(`total   ${ours.toFixed(3)} s   target < 2 s: ${ours < 2 ? 'met' : 'MISSED'}`);

  const expArg = process.argv.indexOf('--experiment');
  if (expArg > 0) {
    const runs = join(process.argv[expArg + 1], 'runs');
    if (!existsSync(runs)) throw new Error(`${runs}: not an experiment folder with run records`);
    const byStage = new Map<string, { n: number; seconds: number }>();
    for (const id of readdirSync(runs)) {
      const r = JSON.parse(readFileSync(join(runs, id, 'run.json'), 'utf8')) as RunRecord;
      const s = byStage.get(r.stage) ?? { n: 0, seconds: 0 };
      s.n += 1;
      s.seconds += r.seconds ?? 0;
      byStage.set(r.stage, s);
    }
    console.log(
      `\nwall time by stage (${process.argv[expArg + 1]}; summed over runs, which may overlap with workers):`,
    );
    for (const [stage, s] of byStage)
      console.log(
        `  ${stage.padEnd(10)} ${String(s.n).padStart(4)} runs ${s.seconds.toFixed(1).padStart(8)} s`,
      );
  }
  console.log(
    JSON.stringify({
      bench: 'lab',
      ours: Number(ours.toFixed(3)),
      reference: Number((ref.plan + ref.status).toFixed(3)),
      unit: 's',
      ratio: Number(((ref.plan + ref.status) / ours).toFixed(2)),
      runs: plan.runs.length,
      plan_s: Number(planSeconds.toFixed(3)),
      status_s: Number(statusSeconds.toFixed(3)),
      target_met: ours < 2,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
