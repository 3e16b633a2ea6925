/**
 * Child process of leak.test.ts: starts a training run that fails after its programs (training step and
 * evaluation) are compiled, because its checkpoint lacks optimizer.safetensors, `RUNS` times, and prints the
 * resident set size after a warm-up and at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpt2Model } from '../../src/models/gpt2.ts';
import { ExampleBatcher } from '../../src/train/batcher.ts';
import { causalLmObjective } from '../../src/train/objective.ts';
import { type TrainerOptions, train } from '../../src/train/trainer.ts';
import { SEQ, sequences, tinyGpt2 } from './helpers.ts';

const RUNS = Number(process.argv[2] ?? 50);
const WARMUP = 5;
const dir = mkdtempSync(join(tmpdir(), 'tlab-leak-'));
// LoRA keeps the frozen base weights (~14 MB here) inside each session as initializers, so a leaked session
// holds native memory that V8 does not see (it is freed only when a finalizer happens to run).
const model = gpt2Model({ ...tinyGpt2(0), n_embd: 384 });
const objective = causalLmObjective(model, 8, SEQ);
const source = new ExampleBatcher(sequences(64, 1), { batchSize: 8, seqLen: SEQ, seed: 5, padId: 0 });
const options = (fingerprint: string): TrainerOptions => ({
  checkpointDir: join(dir, 'ckpt'),
  logDir: join(dir, 'logs'),
  objective,
  train: source,
  eval: { source, batches: 1 },
  strategy: { kind: 'lora', lora: { r: 2, alpha: 4, targets: ['c_attn'] } },
  optimizer: { kind: 'adamw' },
  learningRate: 1e-3,
  schedule: { kind: 'constant' },
  maxSteps: 1,
  seed: 0,
  fingerprint,
  quiet: true,
  tensorboard: false,
});
try {
  await train({ ...options('fp'), saveEvery: 1 });
  const latest = readFileSync(join(dir, 'ckpt', 'latest'), 'utf8').trim();
  rmSync(join(dir, 'ckpt', latest, 'optimizer.safetensors'));
  let failures = 0;
  let warm = 0;
  for (let i = 0; i < RUNS; i++) {
    try {
      await train({ ...options('fp'), maxSteps: 2 });
    } catch (error) {
      if (!/optimizer\.safetensors: missing/.test((error as Error).message)) throw error;
      failures++;
    }
    if (i === WARMUP - 1) warm = process.memoryUsage().rss;
  }
  process.stdout.write(
    `${JSON.stringify({ runs: RUNS, failures, warmRss: warm, endRss: process.memoryUsage().rss })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
