/**
 * A longer learning run: the quickstart's 2-layer GPT-2 trained for more steps on the grid-world text task (the
 * answer is the object at a given row and column of a 3x3 grid given as text), and PyTorch training the same
 * architecture on exactly the same batches with the same optimizer and schedule. Reports wall time and the final
 * evaluation loss and answer-token accuracy of both, so learning parity and speed are read off one run.
 *
 *   npm run bench -- learning [--steps 1500]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTasksFromFile } from '../src/data/build/build-task.ts';
import { writeSafetensors } from '../src/engine/io/safetensors.ts';
import type { HostTensor } from '../src/engine/tensor.ts';
import { ExampleBatcher } from '../src/train/batcher.ts';
import { loadTrainConfig, parseTrainConfig } from '../src/train/config.ts';
import { runTraining } from '../src/train/run-training.ts';

const stepsArg = process.argv.indexOf('--steps');
const STEPS = stepsArg > 0 ? Number(process.argv[stepsArg + 1]) : 1500;
const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-learning-'));
await buildTasksFromFile('examples/quickstart/tasks.yaml', { outDir: join(dir, 'fd'), quiet: true });
const raw = loadTrainConfig('examples/quickstart/pretrain.yaml');
const config = parseTrainConfig(
  {
    ...raw,
    out: dir,
    data: { ...raw.data, task: join(dir, 'fd', 'grid_text') },
    training: { ...raw.training, max_steps: STEPS, eval_every: STEPS, save_every: 0, eval_batches: 4 },
  },
  'pretrain.yaml',
);

// Record every batch the trainer draws, so PyTorch sees the very same data.
const seen = new Map<number, Record<string, HostTensor>>();
const evalBatches = new Map<number, Record<string, HostTensor>>();
const original = ExampleBatcher.prototype.batch;
ExampleBatcher.prototype.batch = function (this: ExampleBatcher, index: number) {
  const b = original.call(this, index);
  (this.options.ordered ? evalBatches : seen).set(index, b);
  return b;
};
const t0 = performance.now();
const summary = await runTraining(config, { configFile: 'pretrain.yaml', mode: 'pretrain', quiet: true });
const totalSeconds = (performance.now() - t0) / 1000;
const oursSeconds = summary.stepSeconds;
ExampleBatcher.prototype.batch = original;

const stack = (m: Map<number, Record<string, HostTensor>>, name: string): HostTensor => {
  const rows = [...m.keys()].sort((a, b) => a - b).map((k) => m.get(k)![name]);
  const [b, t] = rows[0].shape;
  const data = new BigInt64Array(rows.length * b * t);
  rows.forEach((r, i) => {
    data.set(r.data as BigInt64Array, i * b * t);
  });
  return { dtype: 'int64', shape: [rows.length, b, t], data };
};
const batchesFile = join(dir, 'batches.safetensors');
writeSafetensors(batchesFile, {
  ids: stack(seen, 'ids'),
  targets: stack(seen, 'targets'),
  mask: stack(seen, 'attention_mask'),
  eval_ids: stack(evalBatches, 'ids'),
  eval_targets: stack(evalBatches, 'targets'),
  eval_mask: stack(evalBatches, 'attention_mask'),
});
const modelConfig = JSON.parse(readFileSync(join(summary.paths.model, 'config.json'), 'utf8'));
const t = config.training;
writeFileSync(
  join(dir, 'settings.json'),
  JSON.stringify({
    vocab: modelConfig.vocab_size,
    positions: modelConfig.n_positions,
    d: modelConfig.n_embd,
    layers: modelConfig.n_layer,
    heads: modelConfig.n_head,
    lr: t.lr,
    warmup: t.warmup_steps,
    min_ratio: t.min_lr_ratio,
    steps: STEPS,
    weight_decay: config.strategy.weight_decay,
    clip: t.clip_grad_norm,
    dropout: modelConfig.resid_pdrop ?? 0.1,
  }),
);
const ref = spawnSync(
  '/usr/bin/python3',
  ['bench/reference/learning_torch.py', batchesFile, join(dir, 'settings.json')],
  {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2' },
  },
);
if (ref.status !== 0) {
  console.error(`reference failed (needs Debian's python3-torch):\n${ref.stderr}`);
  process.exit(1);
}
const r = JSON.parse(ref.stdout.trim().split('\n').pop()!) as {
  seconds: number;
  eval_loss: number;
  eval_accuracy: number;
};
const ours = summary.eval!;
console.log(
  `grid-world text task, GPT-2 ${modelConfig.n_layer} layers d=${modelConfig.n_embd}, ${STEPS} steps of batch ${t.batch_size}`,
);
console.log(
  `engine : ${oursSeconds.toFixed(1)} s in training steps (${totalSeconds.toFixed(1)} s with data, compilation, evaluation), eval loss ${ours.loss.toFixed(4)}, answer-token accuracy ${(100 * ours.accuracy).toFixed(1)}%`,
);
console.log(
  `PyTorch: ${r.seconds.toFixed(1)} s in training steps, eval loss ${r.eval_loss.toFixed(4)}, answer-token accuracy ${(100 * r.eval_accuracy).toFixed(1)}%`,
);
console.log(
  JSON.stringify({
    bench: 'learning',
    ours: Number(oursSeconds.toFixed(2)),
    reference: Number(r.seconds.toFixed(2)),
    unit: 's',
    ratio: Number((r.seconds / oursSeconds).toFixed(3)),
    eval_loss: { ours: Number(ours.loss.toFixed(4)), reference: Number(r.eval_loss.toFixed(4)) },
    eval_accuracy: { ours: Number(ours.accuracy.toFixed(4)), reference: Number(r.eval_accuracy.toFixed(4)) },
    steps: STEPS,
  }),
);
