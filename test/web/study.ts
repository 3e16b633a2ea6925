/**
 * A small real study in the experiment folder layout (docs/experiment-layout.md), made with the `tlab` commands
 * that exist, run in this process (main() of the CLI, so each command costs no fresh tsx start): two text
 * grid-world tasks and a one-cell image task; a weak GPT-2 base fully fine-tuned on each text task, and a tiny
 * LLaVA-style VLM before and after fine-tuning on the image task; the eval grid and transfer matrix over all of
 * them; features, a LogME / H-score sweep over two sample sizes and two seeds against the grid's scores; a
 * geometry run (ID / ARI profiles, overlap and CKA between the base and a fine-tuned model); an ONNX export for
 * the browser playground (of ft-grid1). Run records, results.csv and summary.json are written here from those result files
 * while the experiment runner (`tlab run`) that will write them does not exist yet.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { EvalGrid } from '../../src/eval/grid/schema.ts';
import type { TransferResult } from '../../src/eval/transfer.ts';
import type { SweepSummary } from '../../src/metrics/sweep.ts';
import { actualAccuracy } from '../../src/report/estimator-points.ts';
import type { RunRecord } from '../../src/report/experiment-types.ts';
import { readJsonl } from '../../src/train/logging/jsonl-log.ts';

/**
 * Runs one tlab command in this process; the text it prints is captured (and returned) so the test output stays
 * clean. Only string writes are captured: node:test's own reporting reaches stdout as binary chunks (its
 * serialized protocol), and those must pass through untouched.
 */
export async function tlabInProcess(args: string[]): Promise<string> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = process.stdout.write.bind(process.stdout);
  const stderr = process.stderr.write.bind(process.stderr);
  const capture =
    (into: string[], original: typeof process.stdout.write) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      if (typeof chunk !== 'string')
        return (original as (c: Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
      into.push(chunk);
      return true;
    };
  process.stdout.write = capture(out, stdout) as typeof process.stdout.write;
  process.stderr.write = capture(err, stderr) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['node', 'tlab', ...args]);
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
  assert.equal(code, 0, `tlab ${args.join(' ')}\n${err.join('')}`);
  return out.join('');
}

export interface StudyFixture {
  dir: string;
  tasks: string[];
  /** Model name → folder (absolute). */
  models: Record<string, string>;
  /** The ONNX export of ft-grid1 (for the browser playground). */
  onnxExport: string;
  /** A run left 'running' so live updates can be tested. */
  runningRunId: string;
}

const GRID = (cols: number, train: number, test: number) =>
  `{ splits: { train: ${train}, test: ${test} }, rows: 1, cols: ${cols}, vocab_subset_size: 4, modality: text, questions_per_image: ${cols} }`;

const iso = (t: number) => new Date(t * 1000).toISOString();

export async function buildStudyExperiment(dir: string): Promise<StudyFixture> {
  const scratch = join(dir, '.scratch');
  mkdirSync(scratch, { recursive: true });
  const tasksDir = join(dir, 'formatted_datasets');
  const t0 = Date.now() / 1000;
  writeFileSync(
    join(scratch, 'tasks.yaml'),
    `tasks:
  grid1: { dataset: 'synthetic:grid-world', generator: ${GRID(2, 120, 16)}, dedupe: false }
  grid2: { dataset: 'synthetic:grid-world', generator: ${GRID(1, 80, 24)}, dedupe: false }
  shapes:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 80, test: 16 }, modality: image, rows: 1, cols: 1, vocab_subset_size: 4, questions_per_image: 1, cell_size: 16 }
    user_prompt: Which shape?
    dedupe: false
`,
  );
  await tlabInProcess(['data', 'build', join(scratch, 'tasks.yaml'), '--out', tasksDir, '--quiet']);

  const train = async (name: string, task: string, steps: number, from: string | null, vlm: boolean) => {
    const model = from
      ? `model: { from: ${from} }`
      : vlm
        ? `tokenizer: { build: word }
model:
  config:
    model_type: llava
    mm_projector_type: linear
    vision_feature_select_strategy: full
    vision_feature_layer: -1
    vision_config: { model_type: vit, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, image_size: 16, patch_size: 8 }
    text_config: { model_type: gpt2, n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }`
        : 'tokenizer: { build: word }\nmodel: { config: { model_type: gpt2, n_layer: 2, n_embd: 32, n_head: 4 } }';
    const file = join(scratch, `${name}.yaml`);
    writeFileSync(
      file,
      `name: ${name}
out: ${scratch}
seed: 0
data: { task: ${join(tasksDir, task)}, seq_len: ${vlm ? 64 : 80} }
${model}
training: { max_steps: ${steps}, batch_size: 16, lr: 0.003, warmup_steps: ${Math.min(5, steps)}, eval_every: ${Math.max(2, Math.floor(steps / 3))} }
`,
    );
    await tlabInProcess([from ? 'finetune' : 'pretrain', file, '--quiet']);
    return join(scratch, 'models', name);
  };
  const trainings: {
    name: string;
    task: string;
    stage: 'pretrain' | 'finetune';
    steps: number;
    from?: string;
  }[] = [
    { name: 'base', task: 'grid1', stage: 'pretrain', steps: 8 },
    { name: 'ft-grid1', task: 'grid1', stage: 'finetune', steps: 40, from: 'base' },
    { name: 'ft-grid2', task: 'grid2', stage: 'finetune', steps: 30, from: 'base' },
    { name: 'vlm-base', task: 'shapes', stage: 'pretrain', steps: 3 },
    { name: 'vlm-shapes', task: 'shapes', stage: 'finetune', steps: 40, from: 'vlm-base' },
  ];
  const timing: Record<string, { start: number; end: number }> = {};
  for (const t of trainings) {
    const start = Date.now() / 1000;
    await train(
      t.name,
      t.task,
      t.steps,
      t.from ? join(scratch, 'models', t.from) : null,
      t.name.startsWith('vlm'),
    );
    timing[t.name] = { start, end: Date.now() / 1000 };
  }
  // Into the layout: zoo/ + zoo_logs/ for pre-trained models, finetuned_checkpoints/ + finetune_logs/ for the rest.
  const models: Record<string, string> = {};
  for (const t of trainings) {
    const [modelsDir, logsDir] =
      t.stage === 'pretrain' ? ['zoo', 'zoo_logs'] : ['finetuned_checkpoints', 'finetune_logs'];
    mkdirSync(join(dir, modelsDir), { recursive: true });
    mkdirSync(join(dir, logsDir), { recursive: true });
    renameSync(join(scratch, 'models', t.name), join(dir, modelsDir, t.name));
    renameSync(join(scratch, 'logs', t.name), join(dir, logsDir, t.name));
    models[t.name] = join(dir, modelsDir, t.name);
  }

  // The eval grid and the transfer matrix, in the experiment folder itself.
  const gridStart = Date.now() / 1000;
  const model = (name: string, extra = '') => `  ${name}: { path: ${models[name]}${extra} }`;
  writeFileSync(
    join(scratch, 'grid.yaml'),
    `out: ${dir}
nb_eval_samples: 16
batch_size: 16
bootstrap: 200
inference: { max_tokens: 4 }
models:
${model('base')}
${model('ft-grid1', ', base: base, train_task: grid1, strategy: full')}
${model('ft-grid2', ', base: base, train_task: grid2, strategy: full')}
${model('vlm-base')}
${model('vlm-shapes', ', base: vlm-base, train_task: shapes, strategy: full')}
tasks:
  grid1: { path: ${join(tasksDir, 'grid1')} }
  grid2: { path: ${join(tasksDir, 'grid2')} }
  shapes: { path: ${join(tasksDir, 'shapes')} }
`,
  );
  await tlabInProcess(['eval', 'grid', join(scratch, 'grid.yaml'), '--quiet']);
  await tlabInProcess(['eval', 'transfer', dir, '--resamples', '200']);
  const gridEnd = Date.now() / 1000;
  const grid = JSON.parse(readFileSync(join(dir, 'eval_grid.json'), 'utf8')) as EvalGrid;
  const transfer = JSON.parse(readFileSync(join(dir, 'transfer.json'), 'utf8')) as TransferResult;

  // Estimators: features of the three text models on both text tasks, scored against their grid accuracies.
  const textModels = ['base', 'ft-grid1', 'ft-grid2'];
  const textTasks = ['grid1', 'grid2'];
  const entries: string[] = [];
  for (const m of textModels)
    for (const t of textTasks) {
      const out = join(dir, 'features', m, t);
      await tlabInProcess([
        'metrics',
        'features',
        models[m],
        join(tasksDir, t),
        '--out',
        out,
        '--limit',
        '60',
      ]);
      entries.push(
        `  - { model: ${m}, task: ${t}, features: ${join(out, 'features.safetensors')}, labels: ${join(out, 'labels.npy')} }`,
      );
    }
  // What each estimator predicts: the score of the model fine-tuned from it on the task, else its own score.
  const accuracy = ['model,task,accuracy'];
  for (const m of textModels)
    for (const t of textTasks) {
      const a = actualAccuracy(grid, m, t);
      if (a) accuracy.push(`${m},${t},${a.value}`);
    }
  writeFileSync(join(scratch, 'accuracy.csv'), `${accuracy.join('\n')}\n`);
  writeFileSync(
    join(scratch, 'sweep.yaml'),
    `entries:
${entries.join('\n')}
metrics: [logme, hscore]
n_samples: [20, all]
seeds: [0, 1]
accuracy: ${join(scratch, 'accuracy.csv')}
`,
  );
  await tlabInProcess([
    'metrics',
    'sweep',
    join(scratch, 'sweep.yaml'),
    '--out',
    join(dir, 'metrics'),
    '--quiet',
  ]);
  const sweep = JSON.parse(readFileSync(join(dir, 'metrics', 'summary.json'), 'utf8')) as SweepSummary;

  // Geometry: the base against a fine-tuned model, layer by layer.
  writeFileSync(
    join(scratch, 'geometry.yaml'),
    `name: text
task: ${join(tasksDir, 'grid1')}
split: train
limit: 60
labels: [label]
conditions:
  - { name: base, model: ${models.base} }
  - { name: ft-grid1, model: ${models['ft-grid1']} }
analysis: { maxk: 12, range_max: 8, id_scale: 2, density_k: 4, z: 1.6, class_fraction: 0.3 }
overlap: { k: 5 }
cka: { pairs: [[base, ft-grid1]] }
`,
  );
  await tlabInProcess(['geometry', 'run', join(scratch, 'geometry.yaml'), '--out', dir, '--quiet']);

  const onnxExport = join(dir, 'exports', 'ft-grid1');
  await tlabInProcess(['export', models['ft-grid1'], '--out', onnxExport]);

  // Run records: one per stage run, as the runner writes them.
  const runs: RunRecord[] = [];
  const record = (r: Partial<RunRecord> & Pick<RunRecord, 'id' | 'stage' | 'name'>): RunRecord => ({
    schema: 'transferlab-run/1',
    params: {},
    config: {},
    deps: [],
    outputs: [],
    state: 'done',
    attempts: 1,
    executor: { kind: 'inline' },
    started_at: iso(t0),
    finished_at: iso(t0 + 1),
    seconds: 1,
    ...r,
  });
  runs.push(record({ id: 'd0a7a5e1c0ffee01', stage: 'data', name: 'data', outputs: ['formatted_datasets'] }));
  const lrOf: Record<string, number> = { base: 0.003, 'ft-grid1': 0.003, 'ft-grid2': 0.003 };
  trainings.forEach((t, i) => {
    const log = join(dir, t.stage === 'pretrain' ? 'zoo_logs' : 'finetune_logs', t.name, 'metrics.jsonl');
    const rows = readJsonl(log).records;
    const last = (split: string, key: string) =>
      [...rows].reverse().find((r) => r.split === split && typeof r[key] === 'number')?.[key] as
        | number
        | undefined;
    runs.push(
      record({
        id: `7a1e${String(i).padStart(12, '0')}`,
        stage: t.stage,
        name: t.name,
        params: {
          model: t.name.startsWith('vlm') ? 'tiny-llava' : 'gpt2-tiny',
          task: t.task,
          strategy: t.stage === 'finetune' ? 'full' : 'pretrain',
          seed: 0,
          lr: lrOf[t.name] ?? 0.003,
          max_steps: t.steps,
        },
        deps: ['d0a7a5e1c0ffee01'],
        outputs: [
          t.stage === 'pretrain' ? `zoo/${t.name}` : `finetuned_checkpoints/${t.name}`,
          t.stage === 'pretrain' ? `zoo_logs/${t.name}` : `finetune_logs/${t.name}`,
        ],
        started_at: iso(timing[t.name].start),
        finished_at: iso(timing[t.name].end),
        seconds: timing[t.name].end - timing[t.name].start,
        result: {
          train_loss: last('train', 'loss') ?? null,
          eval_loss: last('eval', 'loss') ?? null,
          eval_accuracy: last('eval', 'accuracy') ?? null,
        },
      }),
    );
  });
  runs.push(
    record({
      id: 'e7a1000000000001',
      stage: 'eval',
      name: 'eval-grid',
      outputs: ['eval_grid.json', 'cells', 'grader_logs', 'failures'],
      started_at: iso(gridStart),
      finished_at: iso(gridEnd),
      seconds: gridEnd - gridStart,
      result: { cells: grid.cells.length },
    }),
  );
  const running = record({
    id: 'ffee000000000001',
    stage: 'geometry',
    name: 'geometry-vlm',
    state: 'running',
    pid: process.pid,
    host: 'localhost',
    heartbeat_at: iso(Date.now() / 1000),
    finished_at: undefined,
    seconds: undefined,
  });
  runs.push(running);
  runs.push(
    record({
      id: 'fa11000000000001',
      stage: 'features',
      name: 'features-vlm-shapes',
      state: 'failed',
      params: { model: 'vlm-shapes', task: 'shapes' },
      error: 'features: task shapes has no labels for the vision tower (example)',
      log_tail: ['loading vlm-shapes', 'error: features: task shapes has no labels for the vision tower'],
    }),
  );
  for (const r of runs) {
    mkdirSync(join(dir, 'runs', r.id), { recursive: true });
    writeFileSync(join(dir, 'runs', r.id, 'run.json'), `${JSON.stringify(r, null, 2)}\n`);
  }

  // results.csv: eval cells, estimator scores, final training metrics.
  const csv = ['kind,model,finetuned_on,strategy,lora_rank,seed,task,metric,value,n_samples,low,high,run_id'];
  for (const c of grid.cells) {
    if (c.status !== 'done') continue;
    const m = grid.models.find((x) => x.name === c.model)!;
    csv.push(
      [
        'eval',
        m.base ?? m.name,
        m.train_task ?? '',
        m.strategy ?? 'zero-shot',
        '',
        0,
        c.task,
        c.topline_metric,
        c.score,
        c.n,
        c.ci?.low ?? '',
        c.ci?.high ?? '',
        'e7a1000000000001',
      ].join(','),
    );
  }
  for (const s of sweep.scores)
    csv.push(
      ['estimator', s.model, '', '', '', 0, s.task, s.metric, s.mean, s.n_samples, '', '', ''].join(','),
    );
  for (const r of runs.filter((x) => x.stage === 'pretrain' || x.stage === 'finetune'))
    if (typeof r.result?.train_loss === 'number')
      csv.push(
        [
          'train',
          r.name,
          '',
          String(r.params.strategy),
          '',
          0,
          r.params.task,
          'train_loss',
          r.result.train_loss,
          '',
          '',
          '',
          r.id,
        ].join(','),
      );
  writeFileSync(join(dir, 'results.csv'), `${csv.join('\n')}\n`);

  // summary.json from the transfer matrix and the sweep's correlations (largest sample size per estimator).
  const estimators: Record<string, Record<string, unknown>> = {};
  const best: Record<string, unknown> = {};
  for (const task of textTasks) {
    estimators[task] = {};
    let top: { metric: string; tau: number } | null = null;
    for (const metric of ['logme', 'hscore']) {
      const c = sweep.correlations.filter((x) => x.task === task && x.metric === metric).at(-1);
      if (!c) continue;
      const width = c.kendall_ci95[1] - c.kendall_ci95[0];
      estimators[task][metric] = {
        kendall_tau: { value: c.kendall, low: c.kendall_ci95[0], high: c.kendall_ci95[1] },
        weighted_tau: { value: c.weighted_kendall, low: null, high: null },
        spearman: { value: c.spearman, low: null, high: null },
        pearson: { value: c.pearson, low: null, high: null },
        n_models: c.models,
        n_samples: c.n_samples,
        reliability:
          c.models < 4 ? `too few models (${c.models})` : width > 1 ? 'CI wider than 1' : 'informative',
        top1_relative_accuracy: c.relative_top1,
      };
      if (!top || c.kendall > top.tau) top = { metric, tau: c.kendall };
    }
    if (top) best[task] = { estimator: top.metric, kendall_tau: top.tau, informative: false };
  }
  const counts: Record<string, Record<string, number>> = {};
  for (const r of runs) {
    counts[r.stage] ??= {};
    counts[r.stage][r.state] = (counts[r.stage][r.state] ?? 0) + 1;
  }
  writeFileSync(
    join(dir, 'summary.json'),
    `${JSON.stringify(
      {
        schema: 'transferlab-summary/1',
        experiment: { name: 'study', created_at: iso(t0), updated_at: iso(Date.now() / 1000), runs: counts },
        transfer: transfer.matrix,
        estimators,
        best_estimator: best,
        notes: [
          ...transfer.warnings,
          ...transfer.excluded.map((e) => `${e.model} × ${e.task} ${e.status}: ${e.reason}`),
          'run features-vlm-shapes failed',
        ],
      },
      null,
      2,
    )}\n`,
  );
  return {
    dir,
    tasks: ['grid1', 'grid2', 'shapes'],
    models,
    onnxExport,
    runningRunId: running.id,
  };
}
