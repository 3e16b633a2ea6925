/** A tiny random GPT-2 and a character tokenizer shared by the eval tests. */
import { Graph } from '../../src/engine/ir/graph.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { type Gpt2Config, gpt2Model } from '../../src/models/gpt2.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { initParams, ParamBuilder } from '../../src/nn/module.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';

export const tokenizer = CharTokenizer.build({ characters: 'abcdefghijklmnopqrstuvwxyz .,!?' });

export function tinyConfig(overrides: Partial<Gpt2Config> = {}): Gpt2Config {
  return {
    model_type: 'gpt2',
    vocab_size: tokenizer.vocabSize,
    n_positions: 64,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    ...overrides,
  };
}

/** Random weights for `model`, with a wider init than GPT-2's so greedy outputs vary from token to token. */
export function randomWeights(model: DecoderLm, seed: number): Map<string, HostTensor> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  model.forward(pb, { ids: graph.input('ids', 'int64', [1, 1]) });
  const specs = [...pb.specs.values()].map((s) =>
    s.init.kind === 'normal' ? { ...s, init: { kind: 'normal' as const, std: 0.3 } } : s,
  );
  return initParams(specs, seed);
}

export function tinyModel(seed = 1, overrides: Partial<Gpt2Config> = {}) {
  const config = tinyConfig(overrides);
  const model = gpt2Model(config);
  return { config, model, weights: randomWeights(model, seed) };
}
