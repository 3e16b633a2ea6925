/**
 * Full fine-tuning of a ~30M-parameter GPT-2 where onnxruntime-node's output copies matter: every run returns
 * all parameters and both AdamW moments (~360 MB) as fresh JS memory. Compares one step per run with K steps per
 * run inside an ONNX Loop, and for scale the time of one JS copy of the same amount of state into fresh memory.
 *
 *   npm run bench -- engine-loop [--k 8]
 */
import { Graph } from '../src/engine/ir/graph.ts';
import * as T from '../src/engine/ops/index.ts';
import { ParameterStore } from '../src/engine/runtime/param-store.ts';
import { TrainStep } from '../src/engine/runtime/train-step.ts';
import type { HostTensor } from '../src/engine/tensor.ts';
import { type Gpt2Config, gpt2Forward } from '../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../src/nn/module.ts';
import { Rng } from '../src/util/random.ts';

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

function ids(seed: number): HostTensor {
  const rng = new Rng(seed);
  return {
    dtype: 'int64',
    shape: [B, TT],
    data: BigInt64Array.from({ length: B * TT }, () => BigInt(rng.int(config.vocab_size))),
  };
}

async function measure(
  stepsPerRun: number,
  totalSteps: number,
): Promise<{ msPerStep: number; stateMb: number }> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const logits = gpt2Forward(pb, config, graph.input('ids', 'int64', [B, TT])).logits;
  const loss = T.crossEntropy(logits, graph.input('targets', 'int64', [B, TT]));
  const step = await TrainStep.compile({
    graph,
    loss,
    trainable: [...pb.specs.keys()].map((n) => graph.inputs.get(n)!),
    optimizer: { kind: 'adamw' },
    clipNorm: 1,
    stepsPerRun,
  });
  const store = new ParameterStore(initParams(pb.specs.values(), 0));
  step.initState(store);
  const feeds = Array.from({ length: stepsPerRun }, (_, i) => ({
    data: { ids: ids(i), targets: ids(100 + i) },
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
