import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { type Gpt2Config, gpt2Forward } from '../../src/models/gpt2.ts';
import { KvCache } from '../../src/nn/kv-cache.ts';
import { initParams, ParamBuilder } from '../../src/nn/module.ts';
import { maxRelDiff } from '../engine/helpers.ts';

const config: Gpt2Config = {
  model_type: 'gpt2',
  vocab_size: 30,
  n_positions: 16,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
};
const S = 10;
const tokens = [3, 14, 15, 9, 2, 6, 5, 3];
const int64 = (shape: number[], v: number[]): HostTensor => ({
  dtype: 'int64',
  shape,
  data: BigInt64Array.from(v.map(BigInt)),
});

async function compileStep(t: number, weights: Map<string, HostTensor> | null) {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const cache = new KvCache(graph, {
    layers: 2,
    batch: 1,
    kvHeads: 4,
    headDim: 8,
    maxLength: S,
    newTokens: t,
  });
  const out = gpt2Forward(pb, config, graph.input('ids', 'int64', [1, t]), { cache });
  const w = weights ?? initParams(pb.specs.values(), 11);
  return {
    program: await Program.compile(graph, { outputs: { logits: out.logits, ...cache.outputs() }, bind: w }),
    w,
  };
}

test('prefill + one-token decode steps through the KV cache give the full forward pass logits', async () => {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const full = gpt2Forward(pb, config, graph.input('ids', 'int64', [1, tokens.length]));
  const weights = initParams(pb.specs.values(), 11);
  const reference = await Program.compile(graph, { outputs: { logits: full.logits }, bind: weights });
  const ref = (await reference.run({ ids: int64([1, tokens.length], tokens) })).logits.data as Float32Array;

  const prefill = (await compileStep(5, weights)).program;
  const decode = (await compileStep(1, weights)).program;
  const empty = (): HostTensor => ({
    dtype: 'float32',
    shape: [1, 4, S, 8],
    data: new Float32Array(4 * S * 8),
  });
  let cache: Record<string, HostTensor> = {};
  for (let l = 0; l < 2; l++) for (const n of ['key', 'value']) cache[`past.${l}.${n}`] = empty();
  const mask = (n: number) =>
    int64(
      [1, S],
      Array.from({ length: S }, (_, i) => (i < n ? 1 : 0)),
    );
  const r = await prefill.run({
    ids: int64([1, 5], tokens.slice(0, 5)),
    cache_position: int64([5], [0, 1, 2, 3, 4]),
    cache_mask: mask(5),
    ...cache,
  });
  assert.ok(maxRelDiff(r.logits.data as Float32Array, ref.slice(0, 5 * 30)) < 1e-5, 'prefill logits');
  const next = (out: Record<string, HostTensor>) => {
    cache = {};
    for (const [k, v] of Object.entries(out))
      if (k.startsWith('present.')) cache[k.replace('present.', 'past.')] = v;
  };
  next(r);
  for (let p = 5; p < tokens.length; p++) {
    const d = await decode.run({
      ids: int64([1, 1], [tokens[p]]),
      cache_position: int64([1], [p]),
      cache_mask: mask(p + 1),
      ...cache,
    });
    assert.ok(
      maxRelDiff(d.logits.data as Float32Array, ref.slice(p * 30, (p + 1) * 30)) < 1e-5,
      `decode step at position ${p}`,
    );
    next(d);
  }
});
