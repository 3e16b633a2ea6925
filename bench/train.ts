/**
 * Pre-training throughput: tokens/s of a GPT-2-style model (6 layers, d=384, 6 heads, T=256, vocabulary 8192) trained
 * by the engine through the trainer's step (forward, backward, clipping, AdamW in one run), against PyTorch on the
 * same shapes in the same run, plus peak RSS of each process.
 *
 *   npm run bench -- train [--steps 8] [--batch 8]
 */
import { spawnSync } from 'node:child_process';
import type { HostTensor } from '../src/engine/tensor.ts';
import { Rng } from '../src/util/random.ts';
import { compileTraining, gpt2Config, gpt2Loss } from './_shared.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const [L, D, H, TT, V] = [6, 384, 6, 256, 8192];
const B = arg('batch', 8);
/** The trainer's default: several optimizer steps per onnxruntime run (see TrainingSchema.steps_per_run). */
const K = arg('steps-per-run', 4);
const STEPS = Math.ceil(arg('steps', 8) / K) * K;

if (process.argv.includes('--child')) {
  const config = gpt2Config(V, TT, D, L, H);
  const { step, store } = await compileTraining(gpt2Loss(config, B, TT), { stepsPerRun: K });
  const rng = new Rng(1);
  const batches = Array.from({ length: 4 }, () => {
    const seq = Array.from({ length: B * (TT + 1) }, () => rng.int(V));
    const take = (offset: number): HostTensor => ({
      dtype: 'int64',
      shape: [B, TT],
      data: BigInt64Array.from({ length: B * TT }, (_, i) =>
        BigInt(seq[Math.floor(i / TT) * (TT + 1) + (i % TT) + offset]),
      ),
    });
    return { ids: take(0), targets: take(1) };
  });
  const feeds = (from: number) =>
    Array.from({ length: K }, (_, i) => ({ data: batches[(from + i) % 4], lr: [3e-4] }));
  await step.run(store, feeds(0), 0);
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i += K) await step.run(store, feeds(i), K + i);
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      tokens_per_s: (B * TT * STEPS) / seconds,
      ms_per_step: (seconds / STEPS) * 1000,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    }),
  );
  process.exit(0);
}

const lastJson = (out: string) => JSON.parse(out.trim().split('\n').pop()!);
const ours = spawnSync(
  process.execPath,
  ['--import', 'tsx', 'bench/train.ts', '--child', '--batch', String(B), '--steps', String(STEPS)],
  { encoding: 'utf8' },
);
if (ours.status !== 0) throw new Error(ours.stderr);
const ref = spawnSync(
  '/usr/bin/python3',
  ['bench/reference/train_torch.py', ...[L, D, H, TT, V, B, STEPS].map(String)],
  {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2' },
  },
);
if (ref.status !== 0) {
  console.error(`reference failed (needs Debian's python3-torch):\n${ref.stderr}`);
  process.exit(1);
}
const o = lastJson(ours.stdout);
const r = lastJson(ref.stdout);
console.log(
  `GPT-2 ${L} layers, d=${D}, ${H} heads, T=${TT}, vocab ${V}, batch ${B}, ${STEPS} timed steps, ${K} steps per run`,
);
console.log(
  `engine : ${o.tokens_per_s.toFixed(0)} tokens/s (${o.ms_per_step.toFixed(0)} ms/step), peak RSS ${o.peak_rss_mb.toFixed(0)} MB`,
);
console.log(
  `PyTorch: ${r.tokens_per_s.toFixed(0)} tokens/s (${r.ms_per_step.toFixed(0)} ms/step), peak RSS ${r.peak_rss_mb.toFixed(0)} MB (torch ${r.torch})`,
);
console.log(
  JSON.stringify({
    bench: 'train',
    ours: Number(o.tokens_per_s.toFixed(1)),
    reference: Number(r.tokens_per_s.toFixed(1)),
    unit: 'tokens/s',
    ratio: Number((o.tokens_per_s / r.tokens_per_s).toFixed(3)),
    peak_rss_mb: { ours: Number(o.peak_rss_mb.toFixed(0)), reference: Number(r.peak_rss_mb.toFixed(0)) },
  }),
);
