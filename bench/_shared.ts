/** Pieces the engine benchmarks share: random token batches and a compiled full-training step of a graph. */
import { Graph, type Value } from '../src/engine/ir/graph.ts';
import * as T from '../src/engine/ops/index.ts';
import { ParameterStore } from '../src/engine/runtime/param-store.ts';
import { type Stepper, TrainStep } from '../src/engine/runtime/train-step.ts';
import type { HostTensor } from '../src/engine/tensor.ts';
import { type Gpt2Config, gpt2Forward } from '../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../src/nn/module.ts';
import { Rng } from '../src/util/random.ts';

/** Uniform random token ids [batch, seq] from a seed. */
export function randomIds(batch: number, seq: number, vocab: number, seed: number): HostTensor {
  const rng = new Rng(seed);
  return {
    dtype: 'int64',
    shape: [batch, seq],
    data: BigInt64Array.from({ length: batch * seq }, () => BigInt(rng.int(vocab))),
  };
}

export interface CompiledTraining {
  step: Stepper;
  store: ParameterStore;
  /** Number of trained parameters. */
  params: number;
}

/** Full training (every parameter, AdamW, clipping at 1) of the loss `build` makes, with seed-0 initial weights. */
export async function compileTraining(
  build: (graph: Graph, pb: ParamBuilder) => Value,
  options: { stepsPerRun?: number; weightDecay?: number } = {},
): Promise<CompiledTraining> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const loss = build(graph, pb);
  const step = await TrainStep.compile({
    graph,
    loss,
    trainable: [...pb.specs.keys()].map((n) => graph.inputs.get(n)!),
    optimizer: { kind: 'adamw', weightDecay: options.weightDecay ?? 0.1 },
    clipNorm: 1,
    stepsPerRun: options.stepsPerRun ?? 1,
  });
  const store = new ParameterStore(initParams(pb.specs.values(), 0));
  step.initState(store);
  const params = [...pb.specs.values()].reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return { step, store, params };
}

/** Next-token cross-entropy of a GPT-2 on `ids`/`targets` inputs [batch, seq]. */
export function gpt2Loss(config: Gpt2Config, batch: number, seq: number) {
  return (graph: Graph, pb: ParamBuilder): Value =>
    T.crossEntropy(
      gpt2Forward(pb, config, graph.input('ids', 'int64', [batch, seq])).logits,
      graph.input('targets', 'int64', [batch, seq]),
    );
}

/** A GPT-2 config of the given shape (the benchmarks' models differ only in these). */
export function gpt2Config(
  vocab: number,
  positions: number,
  d: number,
  layers: number,
  heads: number,
): Gpt2Config {
  return {
    model_type: 'gpt2',
    vocab_size: vocab,
    n_positions: positions,
    n_embd: d,
    n_layer: layers,
    n_head: heads,
  };
}
