/** A tiny synthetic language task and model shared by the trainer tests. */
import type { Gpt2Config } from '../../src/models/gpt2.ts';
import { gpt2Model } from '../../src/models/gpt2.ts';
import { ExampleBatcher } from '../../src/train/batcher.ts';
import type { TokenExample } from '../../src/train/examples.ts';
import { causalLmObjective } from '../../src/train/objective.ts';
import { Rng } from '../../src/util/random.ts';

export const V = 16;
export const SEQ = 8;

/** Arithmetic sequences mod V (the first two tokens determine the rest); label the predictable part only. */
export function sequences(n: number, seed: number): TokenExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const start = rng.int(V);
    const step = 1 + rng.int(3);
    const ids = Array.from({ length: SEQ }, (_, t) => (start + step * t) % V);
    return { ids, labels: ids.map((v, t) => (t >= 2 ? v : -100)), uid: `s${i}` };
  });
}

export function tinyGpt2(dropout = 0): Gpt2Config {
  return {
    model_type: 'gpt2',
    vocab_size: V,
    n_positions: SEQ,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    resid_pdrop: dropout,
    embd_pdrop: dropout,
    attn_pdrop: dropout,
  };
}

export function setup(batch = 16, dropout = 0) {
  const config = tinyGpt2(dropout);
  const model = gpt2Model(config);
  const objective = causalLmObjective(model, batch, SEQ);
  const train = new ExampleBatcher(sequences(256, 1), { batchSize: batch, seqLen: SEQ, seed: 5, padId: 0 });
  const evalSource = new ExampleBatcher(sequences(64, 2), {
    batchSize: batch,
    seqLen: SEQ,
    seed: 0,
    padId: 0,
    ordered: true,
  });
  return { config, model, objective, train, evalSource };
}
