import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { type Gpt2Config, gpt2Forward } from '../../src/models/gpt2.ts';
import { type LoraConfig, loraScaling, mergeLora, unmergeLora } from '../../src/nn/lora.ts';
import { initParams, initTensor, ParamBuilder } from '../../src/nn/module.ts';
import { maxRelDiff } from '../engine/helpers.ts';

const config: Gpt2Config = {
  model_type: 'gpt2',
  vocab_size: 40,
  n_positions: 16,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
};
const ids: HostTensor = {
  dtype: 'int64',
  shape: [2, 6],
  data: BigInt64Array.from([1, 5, 9, 3, 2, 7, 0, 4, 4, 8, 39, 1].map(BigInt)),
};

async function logits(lora: LoraConfig | null, params: Map<string, HostTensor> | null) {
  const graph = new Graph();
  const pb = new ParamBuilder(graph, 'float32', lora);
  const out = gpt2Forward(pb, config, graph.input('ids', 'int64', [2, 6]));
  const values = params ?? initParams(pb.specs.values(), 7);
  const program = await Program.compile(graph, { outputs: { logits: out.logits }, bind: values });
  const r = (await program.run({ ids })).logits.data as Float32Array;
  await program.release();
  return { logits: r, pb, values };
}

describe('LoRA', () => {
  const lora: LoraConfig = { r: 4, alpha: 8, targets: ['c_attn', 'mlp.c_fc'] };

  test('adapters attach to exactly the targeted modules, with PEFT names and shapes', async () => {
    const { pb } = await logits(lora, null);
    const adapters = [...pb.specs.keys()].filter((n) => n.includes('lora_'));
    assert.deepEqual(adapters.sort(), [
      'h.0.attn.c_attn.lora_A.weight',
      'h.0.attn.c_attn.lora_B.weight',
      'h.0.mlp.c_fc.lora_A.weight',
      'h.0.mlp.c_fc.lora_B.weight',
      'h.1.attn.c_attn.lora_A.weight',
      'h.1.attn.c_attn.lora_B.weight',
      'h.1.mlp.c_fc.lora_A.weight',
      'h.1.mlp.c_fc.lora_B.weight',
    ]);
    assert.deepEqual(pb.specs.get('h.0.attn.c_attn.lora_A.weight')!.shape, [4, 32]);
    assert.deepEqual(pb.specs.get('h.0.attn.c_attn.lora_B.weight')!.shape, [96, 4]);
    assert.equal(loraScaling(lora), 2);
    assert.equal(loraScaling({ ...lora, rsLora: true }), 4);
  });

  test('with B = 0 the adapted model equals the base model', async () => {
    const base = await logits(null, null);
    const adapted = await logits(lora, null);
    for (const [k, v] of base.values) adapted.values.set(k, v);
    const again = await logits(lora, adapted.values);
    assert.deepEqual(Array.from(again.logits), Array.from(base.logits));
  });

  test('merged equals unmerged, and unmerge restores the base weights', async () => {
    const adapted = await logits(lora, null);
    // Give every B a non-zero value so the adapters matter.
    for (const [name, spec] of adapted.pb.specs) {
      if (name.endsWith('lora_B.weight'))
        adapted.values.set(name, initTensor({ ...spec, init: { kind: 'normal', std: 0.2 } }, 3));
    }
    const unmerged = await logits(lora, adapted.values);
    const baseOnly = await logits(null, null);
    const merged = mergeLora(adapted.values, adapted.pb.loraModules.values());
    const mergedBase = new Map([...merged].filter(([k]) => !k.includes('lora_')));
    const viaMerge = await logits(null, mergedBase);
    assert.ok(maxRelDiff(viaMerge.logits, unmerged.logits) < 1e-5, 'merged forward equals adapter forward');
    assert.ok(maxRelDiff(viaMerge.logits, baseOnly.logits) > 1e-3, 'the adapters changed the output');
    const restored = unmergeLora(merged, adapted.pb.loraModules.values());
    for (const m of adapted.pb.loraModules.values()) {
      const w = `${m.path}.weight`;
      assert.ok(
        maxRelDiff(restored.get(w)!.data as Float32Array, adapted.values.get(w)!.data as Float32Array) < 1e-6,
        w,
      );
    }
  });
});
