/**
 * Generation benchmark: greedy tokens/s with the KV cache (prefill once, then one-token decode steps against a
 * host-side cache) against the reference without it (a full forward pass over prompt + generated tokens at every
 * step), on a GPT-2-style model (4 layers, d=256, 4 heads, vocabulary 512), prompts of 32 tokens, 128 new tokens,
 * batch 1 and 8, in one run. Programs are compiled in a warm-up run first, so the timings are steady state.
 * Both paths must produce the same tokens. The last line's ratio is the speed-up (cached / uncached) at batch 8.
 *
 *   npm run bench -- generate [--repeats 2]
 */
import { availableParallelism } from 'node:os';
import { Graph } from '../src/engine/ir/graph.ts';
import { Generator } from '../src/eval/generate.ts';
import { type Gpt2Config, gpt2Model } from '../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../src/nn/module.ts';
import { CharTokenizer } from '../src/tokenize/simple-tokenizer.ts';
import { Rng } from '../src/util/random.ts';

const PROMPT = 32;
const NEW = 128;
const BATCHES = [1, 8];
const repeatsArg = process.argv.indexOf('--repeats');
const REPEATS = repeatsArg > 0 ? Number(process.argv[repeatsArg + 1]) : 2;

const config: Gpt2Config = {
  model_type: 'gpt2',
  vocab_size: 512,
  n_positions: 256,
  n_embd: 256,
  n_layer: 4,
  n_head: 4,
};
const model = gpt2Model(config);
const graph = new Graph();
const pb = new ParamBuilder(graph);
model.forward(pb, { ids: graph.input('ids', 'int64', [1, 1]) });
const weights = initParams(pb.specs.values(), 0);
// Text is not looked at; ids past the tokenizer's vocabulary simply have none.
const tokenizer = CharTokenizer.build({ characters: 'abcdefghijklmnopqrstuvwxyz ' });
const generator = new Generator(model, weights, tokenizer);

async function tokensPerSecond(prompts: number[][], useCache: boolean) {
  const options = { maxNewTokens: NEW, stopTokenIds: [], batchSize: prompts.length, useCache };
  const warm = await generator.generate(prompts, options); // compiles every program this run needs
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    await generator.generate(prompts, options);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { tokPerS: (prompts.length * NEW) / best, seconds: best, tokens: warm.map((g) => g.tokenIds) };
}

const rows: Record<string, unknown>[] = [];
let headline = { ours: 0, reference: 0 };
let identical = true;
for (const b of BATCHES) {
  const rng = new Rng(b);
  const prompts = Array.from({ length: b }, () =>
    Array.from({ length: PROMPT }, () => rng.int(config.vocab_size)),
  );
  const cached = await tokensPerSecond(prompts, true);
  const uncached = await tokensPerSecond(prompts, false);
  const same = JSON.stringify(cached.tokens) === JSON.stringify(uncached.tokens);
  identical &&= same;
  const row = {
    batch: b,
    cached_tok_s: Number(cached.tokPerS.toFixed(1)),
    uncached_tok_s: Number(uncached.tokPerS.toFixed(1)),
    speedup: Number((cached.tokPerS / uncached.tokPerS).toFixed(2)),
    cached_s: Number(cached.seconds.toFixed(3)),
    uncached_s: Number(uncached.seconds.toFixed(3)),
    same_tokens: same,
  };
  rows.push(row);
  console.log(
    `batch ${b}: KV cache ${row.cached_tok_s} tok/s, full re-forward ${row.uncached_tok_s} tok/s, speed-up ${row.speedup}x, same tokens: ${same}`,
  );
  headline = { ours: cached.tokPerS, reference: uncached.tokPerS };
}
await generator.release();
if (!identical) console.error('generate bench: cached and uncached generation gave different tokens');
console.log(
  JSON.stringify({
    bench: 'generate',
    ours: Number(headline.ours.toFixed(1)),
    reference: Number(headline.reference.toFixed(1)),
    unit: 'tok/s',
    ratio: Number((headline.ours / headline.reference).toFixed(2)),
    ratio_means: 'speed-up of KV-cached over full re-forward greedy generation at batch 8',
    model: '4 layers, d=256, 4 heads, vocab 512',
    prompt_tokens: PROMPT,
    new_tokens: NEW,
    batches: rows,
    same_tokens: identical,
    threads: Number(process.env.TLAB_THREADS) || availableParallelism(),
  }),
);
if (!identical) process.exitCode = 1;
