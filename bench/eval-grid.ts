/**
 * Eval-grid overhead per sample: a whole grid cell (samples loaded, requests built, answers graded, partial logs
 * appended per batch, the log, failure list and cell written atomically, grid files rebuilt) against the same
 * requests sent straight to the same in-process backend, in the same run. A small random GPT-2 (2 layers, d=64) on
 * a grid-world text task of 256 test questions, greedy, 4 new tokens, exact match. Both sides compile their
 * programs in a warm-up pass first; the best of --repeats is kept.
 *
 *   npm run bench -- eval-grid [--samples 256] [--repeats 3]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTaskDataset } from '../src/data/build/build-task.ts';
import type { TaskConfig } from '../src/data/config.ts';
import { loadTaskSplit } from '../src/data/read.ts';
import { writeSafetensors } from '../src/engine/io/safetensors.ts';
import { Graph } from '../src/engine/ir/graph.ts';
import { resolveGridConfig } from '../src/eval/grid/config.ts';
import { runEvalGrid } from '../src/eval/grid/run.ts';
import { inferenceMessages, loadTaskSamples } from '../src/eval/grid/samples.ts';
import { LocalBackend } from '../src/eval/inference/local-backend.ts';
import { gpt2Model } from '../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../src/nn/module.ts';
import { buildDataTokenizer } from '../src/train/data-tokenizer.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SAMPLES = arg('samples', 256);
const REPEATS = arg('repeats', 3);

const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-grid-'));
try {
  const task: TaskConfig = {
    dataset: 'synthetic:grid-world',
    generator: {
      splits: { train: 20, test: SAMPLES / 2 },
      rows: 1,
      cols: 2,
      modality: 'text',
      questions_per_image: 2,
    },
    mode: 'streaming',
    seed: 0,
    dedupe: false,
  } as TaskConfig;
  await buildTaskDataset('grid', task, {
    outDir: join(dir, 'tasks'),
    baseDir: dir,
    file: 'bench',
    quiet: true,
  });
  const taskDir = join(dir, 'tasks', 'grid');
  const tokenizer = buildDataTokenizer('word', await loadTaskSplit(taskDir, 'train'));
  const config = {
    model_type: 'gpt2',
    vocab_size: tokenizer.vocabSize,
    n_positions: 128,
    n_embd: 64,
    n_layer: 2,
    n_head: 4,
  };
  const model = gpt2Model(config as never);
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  model.forward(pb, { ids: graph.input('ids', 'int64', [1, 1]) });
  const weights = initParams([...pb.specs.values()], 0);
  const modelDir = join(dir, 'model');
  mkdirSync(modelDir);
  writeFileSync(
    join(modelDir, 'config.json'),
    JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'] }),
  );
  writeSafetensors(
    join(modelDir, 'model.safetensors'),
    new Map([...weights].map(([k, v]) => [`transformer.${k}`, v])),
  );
  tokenizer.save(modelDir);

  const doc = {
    models: { m: { path: modelDir } },
    tasks: { grid: { path: taskDir } },
    inference: { max_tokens: 4 },
    batch_size: 32,
    bootstrap: 0,
  };
  const gridConfig = (out: string) => resolveGridConfig(doc, join(dir, 'grid.yaml'), { out });

  // The grid, from scratch each time (a fresh folder), with one backend opened and warmed outside the timing.
  const backend = LocalBackend.open(modelDir, { name: 'm' });
  const samples = await loadTaskSamples(gridConfig(join(dir, 'warm')).tasks[0], null, 0, 'bench');
  const requests = samples.samples.map((s) => ({
    messages: inferenceMessages(s, taskDir),
    params: gridConfig(join(dir, 'warm')).tasks[0].params,
  }));
  await backend.chat(requests);
  // The warm backend for every grid (closing it is left to the end).
  const openBackend = async () => ({
    model: backend.model,
    capabilities: backend.capabilities,
    chat: backend.chat.bind(backend),
    loglik: backend.loglik.bind(backend),
    close: async () => {},
  });
  let grid = Number.POSITIVE_INFINITY;
  let direct = Number.POSITIVE_INFINITY;
  for (let r = 0; r < REPEATS; r++) {
    let t0 = performance.now();
    for (let start = 0; start < requests.length; start += 32)
      await backend.chat(requests.slice(start, start + 32));
    direct = Math.min(direct, (performance.now() - t0) / 1000);
    t0 = performance.now();
    await runEvalGrid(gridConfig(join(dir, `grid-${r}`)), { quiet: true, openBackend });
    grid = Math.min(grid, (performance.now() - t0) / 1000);
  }
  await backend.close();
  const n = requests.length;
  const overheadMs = ((grid - direct) / n) * 1000;
  console.log(`${n} samples, greedy, 4 new tokens, batches of 32`);
  console.log(
    `backend alone   ${(direct * 1000).toFixed(0).padStart(7)} ms  (${((direct / n) * 1000).toFixed(2)} ms/sample)`,
  );
  console.log(
    `whole grid cell ${(grid * 1000).toFixed(0).padStart(7)} ms  (${((grid / n) * 1000).toFixed(2)} ms/sample)`,
  );
  console.log(
    `grid overhead   ${overheadMs.toFixed(2)} ms/sample (${((grid / direct - 1) * 100).toFixed(1)}%)`,
  );
  console.log(
    JSON.stringify({
      bench: 'eval-grid',
      ours: Number((n / grid).toFixed(1)),
      reference: Number((n / direct).toFixed(1)),
      unit: 'samples/s',
      ratio: Number((direct / grid).toFixed(3)),
      ratio_means:
        'samples/s of a whole grid cell over the backend alone on the same requests (1 = no overhead)',
      overhead_ms_per_sample: Number(overheadMs.toFixed(3)),
      samples: n,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
