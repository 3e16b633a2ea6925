import type { Gpt2Config } from '../src/models/gpt2.ts';
import { compileTraining, gpt2Loss, randomIds } from './_shared.ts';

const kArg = process.argv.indexOf('--k');
const K = kArg > 0 ? Number(process.argv[kArg + 1]) : 8;
const B = 2;
const TT = 32;
const config: Gpt2Config = {
  model_type: 'gpt2',
  vocab_size: 8192,
  n_positions: TT,
  n_embd: 512,
  n_layer: 8,
  n_head: 8,
};

async function measure(
  stepsPerRun: number,
  totalSteps: number,
): Promise<{ msPerStep: number; stateMb: number }> {
  const { step, store } = await compileTraining(gpt2Loss(config, B, TT), { stepsPerRun, weightDecay: 0.01 });
  const feeds = Array.from({ length: stepsPerRun }, (_, i) => ({
    data: {
      ids: randomIds(B, TT, config.vocab_size, i),
      targets: randomIds(B, TT, config.vocab_size, 100 + i),
    },
    lr: [1e-4],
  }));
  await step.run(store, feeds, 0);
  const t0 = performance.now();
  for (let done = 0; done < totalSteps; done += stepsPerRun) await step.run(store, feeds, done + stepsPerRun);
  const ms = (performance.now() - t0) / totalSteps;
  const stateMb = store.byteLength() / 2 ** 20;
  await step.release();
  return { msPerStep: ms, stateMb };
}

const single = await measure(1, 2 * K);
const looped = await measure(K, 2 * K);
// The copy the binding makes for every output, measured on buffers of the same total size.
const buf = new Float32Array((single.stateMb * 2 ** 20) / 4);
const c0 = performance.now();
const copy = buf.slice();
const copyMs = performance.now() - c0;
void copy;
console.log(
  `GPT-2 ${config.n_layer} layers d=${config.n_embd} vocab ${config.vocab_size}, batch ${B}x${TT}; parameters + AdamW state ${single.stateMb.toFixed(0)} MB`,
);
console.log(`1 step per run:        ${single.msPerStep.toFixed(1)} ms/step`);
console.log(`${K} steps per run (Loop): ${looped.msPerStep.toFixed(1)} ms/step`);
console.log(`for scale: one copy of the whole state into fresh JS memory takes ${copyMs.toFixed(1)} ms`);
console.log(
  JSON.stringify({
    bench: 'engine-loop',
    ours: Number(looped.msPerStep.toFixed(2)),
    reference: Number(single.msPerStep.toFixed(2)),
    unit: 'ms/step',
    ratio: Number((single.msPerStep / looped.msPerStep).toFixed(3)),
    steps_per_run: K,
    state_mb: Number(single.stateMb.toFixed(1)),
  }),
);
