/**
 * Engine benchmark: training-step time (forward, backward, clipping, AdamW in one onnxruntime run) of (a) one
 * GPT-2 block (B=8, T=128, d=256, 4 heads, MLP 4d) and (b) a 4-layer GPT-2 of that width with vocabulary 512,
 * against PyTorch (2 threads, OpenBLAS) on the same shapes, plus numpy's sgemm peak, all in one run.
 *
 *   npm run bench -- engine [--steps 20]
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Graph, Value } from '../src/engine/ir/graph.ts';
import * as T from '../src/engine/ops/index.ts';
import type { HostTensor } from '../src/engine/tensor.ts';
import { gpt2Block } from '../src/models/gpt2.ts';
import type { ParamBuilder } from '../src/nn/module.ts';
import { Rng } from '../src/util/random.ts';
import { compileTraining, gpt2Config, gpt2Loss, randomIds } from './_shared.ts';

const B = 8;
const TT = 128;
const D = 256;
const H = 4;
const V = 512;
const L = 4;
const stepsArg = process.argv.indexOf('--steps');
const STEPS = stepsArg > 0 ? Number(process.argv[stepsArg + 1]) : 20;
const config = gpt2Config(V, TT, D, L, H);

function randomTensor(shape: number[], seed: number): HostTensor {
  const rng = new Rng(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return { dtype: 'float32', shape, data };
}

async function timeStep(
  build: (graph: Graph, pb: ParamBuilder) => Value,
  data: Record<string, HostTensor>,
): Promise<{ ms: number; params: number }> {
  const { step, store, params } = await compileTraining(build);
  const feed = [{ data, lr: [1e-4] }];
  for (let i = 0; i < 3; i++) await step.run(store, feed, i);
  const times: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    await step.run(store, feed, i + 3);
    times.push(performance.now() - t0);
  }
  await step.release();
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], params };
}

/** Forward FLOPs: 2 per multiply-add of every matmul (projections, attention scores and values, LM head). */
function forwardFlops(layers: number, lmHead: boolean): number {
  const tokens = B * TT;
  const perLayer =
    tokens * (2 * D * 3 * D + 2 * D * D + 2 * 2 * D * 4 * D) + B * H * 2 * (2 * TT * TT * (D / H));
  return layers * perLayer + (lmHead ? tokens * 2 * D * V : 0);
}

const block = await timeStep(
  (graph, pb) => {
    const x = graph.input('x', 'float32', [B, TT, D]);
    const y = gpt2Block(pb, config, x, T.causalMask(graph, TT), 0);
    return T.reduceMean(T.mul(y, y));
  },
  { x: randomTensor([B, TT, D], 1) },
);
const gpt = await timeStep(gpt2Loss(config, B, TT), {
  ids: randomIds(B, TT, V, 2),
  targets: randomIds(B, TT, V, 3),
});

const py = spawnSync(
  '/usr/bin/python3',
  ['bench/reference/engine_torch.py', ...[B, TT, D, H, V, L].map(String), String(STEPS)],
  { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2' } },
);
if (py.status !== 0) {
  console.error(`reference failed (needs Debian's python3-torch):\n${py.stderr}`);
  process.exit(1);
}
const ref = JSON.parse(py.stdout.trim().split('\n').pop()!) as {
  block_ms: number;
  gpt_ms: number;
  sgemm_gflops: number;
  torch: string;
};

const blockGflops = (3 * forwardFlops(1, false)) / (block.ms / 1000) / 1e9;
const gptGflops = (3 * forwardFlops(L, true)) / (gpt.ms / 1000) / 1e9;
const rows = [
  ['block (B=8,T=128,d=256)', block.ms, ref.block_ms, blockGflops],
  [`gpt2 ${L} layers, vocab ${V}`, gpt.ms, ref.gpt_ms, gptGflops],
] as const;
console.log(
  `threads ${availableParallelism()}, torch ${ref.torch}, numpy sgemm peak ${ref.sgemm_gflops.toFixed(1)} GFLOP/s`,
);
console.log(
  'model                          engine ms   torch ms   speed-up   engine GFLOP/s   % of sgemm peak',
);
for (const [name, ours, theirs, gf] of rows) {
  console.log(
    `${name.padEnd(30)} ${ours.toFixed(1).padStart(9)} ${theirs.toFixed(1).padStart(10)} ${(theirs / ours).toFixed(2).padStart(9)}x ${gf.toFixed(1).padStart(15)} ${((100 * gf) / ref.sgemm_gflops).toFixed(0).padStart(16)}%`,
  );
}
console.log(
  JSON.stringify({
    bench: 'engine',
    ours: Number(gpt.ms.toFixed(2)),
    reference: Number(ref.gpt_ms.toFixed(2)),
    unit: 'ms',
    ratio: Number((ref.gpt_ms / gpt.ms).toFixed(3)),
    block: {
      ours: Number(block.ms.toFixed(2)),
      reference: Number(ref.block_ms.toFixed(2)),
      ratio: Number((ref.block_ms / block.ms).toFixed(3)),
      gflops: Number(blockGflops.toFixed(1)),
    },
    gpt2: { gflops: Number(gptGflops.toFixed(1)), params: gpt.params },
    sgemm_peak_gflops: Number(ref.sgemm_gflops.toFixed(1)),
  }),
);
