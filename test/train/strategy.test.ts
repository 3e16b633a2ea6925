import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { gpt2Forward } from '../../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../../src/nn/module.ts';
import { planParameters, type StrategyConfig } from '../../src/train/strategy.ts';
import { train } from '../../src/train/trainer.ts';
import { setup, tinyGpt2 } from './helpers.ts';

/** Pre-trained starting weights: the tiny GPT-2's initialisation under another seed. */
function baseWeights(): Map<string, HostTensor> {
  const g = new Graph();
  const pb = new ParamBuilder(g);
  gpt2Forward(pb, tinyGpt2(), g.input('ids', 'int64', [1, 4]));
  return initParams(pb.specs.values(), 77);
}

const componentOf = (name: string) =>
  name.startsWith('h.0.') ? 'lower' : name.startsWith('h.1.') ? 'upper' : 'embeddings';

async function changed(
  strategy: StrategyConfig,
): Promise<{ changed: Set<string>; unchanged: Set<string>; all: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-strategy-'));
  const { objective, train: source } = setup(8);
  const initial = baseWeights();
  const r = await train({
    checkpointDir: join(dir, 'c'),
    logDir: join(dir, 'l'),
    objective,
    train: source,
    initialWeights: initial,
    allowInit: (n) => n.includes('.lora_'),
    strategy,
    componentOf,
    optimizer: { kind: 'adamw' },
    learningRate: 1e-2,
    schedule: { kind: 'constant' },
    maxSteps: 3,
    seed: 1,
    fingerprint: 'x',
    quiet: true,
    tensorboard: false,
  });
  const out = { changed: new Set<string>(), unchanged: new Set<string>(), all: [...r.weights.keys()] };
  for (const [name, t] of r.weights) {
    const before = initial.get(name);
    const same =
      before !== undefined &&
      (t.data as Float32Array).every((v, i) => v === (before.data as Float32Array)[i]);
    (same ? out.unchanged : out.changed).add(name);
  }
  return out;
}

describe('training strategies change exactly the parameters they name', () => {
  test('full: every parameter', async () => {
    const r = await changed({ kind: 'full' });
    assert.equal(r.unchanged.size, 0, [...r.unchanged].join(', '));
  });

  test('lora: only the adapters (B starts at zero, so the first step moves B, then A)', async () => {
    const r = await changed({ kind: 'lora', lora: { r: 2, alpha: 4, targets: ['c_attn', 'c_proj'] } });
    const adapters = r.all.filter((n) => n.includes('.lora_'));
    assert.equal(
      adapters.length,
      2 * 2 * 3,
      'c_attn, attn.c_proj and mlp.c_proj in two layers, A and B each',
    );
    for (const n of r.all) assert.equal(r.changed.has(n), n.includes('.lora_'), n);
  });

  test('components: full on one, LoRA on another, the rest frozen, with per-component learning rates', async () => {
    const strategy: StrategyConfig = {
      kind: 'components',
      components: { lower: 'full', upper: 'lora' },
      lora: { r: 2, alpha: 2, targets: ['c_fc'] },
      learningRates: { lower: 1e-3, upper: 5e-3 },
    };
    const r = await changed(strategy);
    for (const n of r.all) {
      const expected = n.startsWith('h.0.')
        ? !n.includes('.lora_')
        : n.startsWith('h.1.')
          ? n.includes('.lora_')
          : false;
      assert.equal(r.changed.has(n), expected, n);
    }
    assert.ok(
      !r.all.some((n) => n.startsWith('h.0.') && n.includes('.lora_')),
      'LoRA only inside the LoRA component',
    );
    const g = new Graph();
    const pb = new ParamBuilder(g);
    gpt2Forward(pb, tinyGpt2(), g.input('ids', 'int64', [1, 4]));
    const plan = planParameters(
      pb.specs.values(),
      { ...strategy, components: { lower: 'full' }, weightDecay: 0.1 },
      1e-4,
      componentOf,
    );
    assert.deepEqual(
      plan.groups.map((x) => [x.name, x.weightDecay]),
      [
        ['lower.no_decay', 0],
        ['lower', 0.1],
      ],
    );
    assert.deepEqual(plan.baseLrs, [1e-3, 1e-3]);
  });

  test('naming an unknown component is a clear error', () => {
    const g = new Graph();
    const pb = new ParamBuilder(g);
    gpt2Forward(pb, tinyGpt2(), g.input('ids', 'int64', [1, 4]));
    assert.throws(
      () =>
        planParameters(
          pb.specs.values(),
          { kind: 'components', components: { vision: 'full' } },
          1e-4,
          componentOf,
        ),
      /strategy.components.vision: no such component; valid: embeddings, lower, upper/,
    );
  });
});
