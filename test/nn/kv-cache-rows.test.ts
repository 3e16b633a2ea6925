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
const V = 30;
const S = 10;
const P = 5;
// Two rows of different lengths, left-padded to P in the cache.
const rows = [
  [3, 14, 15, 9, 2, 6, 5, 3],
  [7, 1, 8, 2, 8, 1],
];
const int64 = (shape: number[], v: number[]): HostTensor => ({
  dtype: 'int64',
  shape,
  data: BigInt64Array.from(v.map(BigInt)),
});

async function referenceLogits(ids: number[], weights: Map<string, HostTensor>): Promise<Float32Array> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const out = gpt2Forward(pb, config, graph.input('ids', 'int64', [1, ids.length]));
  const program = await Program.compile(graph, { outputs: { logits: out.logits }, bind: weights });
  return (await program.run({ ids: int64([1, ids.length], ids) })).logits.data as Float32Array;
}

for (const append of [false, true]) {
  test(`per-row positions${append ? ' with [past; new] attention' : ''}: a left-padded batch decodes as each row alone`, async () => {
    const b = rows.length;
    const compile = async (t: number, weights: Map<string, HostTensor> | null) => {
      const graph = new Graph();
      const pb = new ParamBuilder(graph);
      const cache = new KvCache(graph, {
        layers: 2,
        batch: b,
        kvHeads: 4,
        headDim: 8,
        maxLength: S,
        newTokens: t,
        rowPositions: true,
        append,
      });
      const out = gpt2Forward(pb, config, graph.input('ids', 'int64', [b, t]), { cache });
      const w = weights ?? initParams(pb.specs.values(), 11);
      const outputs = { logits: out.logits, ...cache.newEntries() };
      return { program: await Program.compile(graph, { outputs, bind: w }), w };
    };
    const { program: prefill, w } = await compile(P, null);
    const { program: decode } = await compile(1, w);
    // The host keeps the cache and writes each call's new entries at their slots.
    const past: Record<string, Float32Array> = {};
    for (let l = 0; l < 2; l++)
      for (const n of ['key', 'value']) past[`${l}.${n}`] = new Float32Array(b * 4 * S * 8);
    const feedsPast = () =>
      Object.fromEntries(
        Object.entries(past).map(([k, data]) => [
          `past.${k}`,
          { dtype: 'float32', shape: [b, 4, S, 8], data },
        ]),
      ) as Record<string, HostTensor>;
    const write = (out: Record<string, HostTensor>, slot: number, t: number) => {
      for (const [k, dst] of Object.entries(past)) {
        const src = out[`new.${k}`].data as Float32Array;
        for (let i = 0; i < b * 4; i++) dst.set(src.subarray(i * t * 8, (i + 1) * t * 8), (i * S + slot) * 8);
      }
    };
    // Prompts: row 0 its first 5 tokens, row 1 its first 3 (2 pads on the left).
    const lens = [5, 3];
    const pads = lens.map((n) => P - n);
    const mask = rows.flatMap((_, r) => Array.from({ length: S }, (_, s) => (s >= pads[r] && s < P ? 1 : 0)));
    const ids = rows.flatMap((row, r) => [...Array(pads[r]).fill(0), ...row.slice(0, lens[r])]);
    const positions = rows.flatMap((_, r) => Array.from({ length: P }, (_, s) => Math.max(0, s - pads[r])));
    let out = await prefill.run({
      ids: int64([b, P], ids),
      position_ids: int64([b, P], positions),
      cache_position: int64([P], [0, 1, 2, 3, 4]),
      cache_mask: int64([b, S], mask),
      ...feedsPast(),
    });
    write(out, 0, P);
    const refs = await Promise.all(rows.map((row) => referenceLogits(row, w)));
    const check = (logits: Float32Array, t: number, pos: number[]) => {
      for (let r = 0; r < b; r++)
        assert.ok(
          maxRelDiff(
            logits.slice((r * t + t - 1) * V, (r * t + t) * V),
            refs[r].slice(pos[r] * V, (pos[r] + 1) * V),
          ) < 1e-5,
          `row ${r} at position ${pos[r]}`,
        );
    };
    check(out.logits.data as Float32Array, P, [4, 2]);
    for (let step = 0; step < 3; step++) {
      const slot = P + step;
      const pos = lens.map((n) => n + step);
      for (let r = 0; r < b; r++) mask[r * S + slot] = 1;
      out = await decode.run({
        ids: int64(
          [b, 1],
          rows.map((row, r) => row[pos[r]]),
        ),
        position_ids: int64([b, 1], pos),
        cache_position: int64([1], [slot]),
        cache_mask: int64([b, S], mask),
        ...feedsPast(),
      });
      write(out, slot, 1);
      check(out.logits.data as Float32Array, 1, pos);
    }
  });
}
