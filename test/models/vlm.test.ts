/**
 * The VLM beyond parity: rows without image placeholders are plain text, gradients flow through the image splice
 * into the projector and the vision tower (checked against central differences), placeholders expand as LLaVA's
 * processor does, and parameter names group into encoder / projector / decoder / head.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grad } from '../../src/engine/autodiff/grad.ts';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { componentOf, groupByComponent } from '../../src/models/components.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { parameterSpecs } from '../../src/models/hf/registry.ts';
import type { Vlm } from '../../src/models/types.ts';
import { expandImagePlaceholders } from '../../src/models/vlm.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import { maxRelDiff, randn } from '../engine/helpers.ts';
import { expected, fixtureDir, int64, runModel } from './helpers.ts';

describe('LLaVA behaviour', () => {
  test('a row without placeholders is plain text: same logits as the decoder alone', async () => {
    const folder = loadModelFolder(fixtureDir('llava_gpt2_vit_linear'));
    const vlm = folder.model as Vlm;
    const ref = expected('llava_gpt2_vit_linear');
    const text = [4, 8, 15, 16, 23, 42, 7, 9];
    const ids = int64([2, 8], [...text, ...text.map((x) => (x === 15 ? 95 : x))]);
    // Row 1 has one placeholder, so only row 0 is checked; pixel values are given for both rows.
    const out = await runModel(folder, folder.weights, {
      input_ids: ids,
      pixel_values: ref.get('pixel_values')!,
    });
    const decoderWeights = new Map(
      [...folder.weights].filter(([k]) => k.startsWith('language_model.')).map(([k, v]) => [k.slice(15), v]),
    );
    const textOnly = await runModel({ kind: 'causal-lm', model: vlm.decoder }, decoderWeights, {
      input_ids: int64([1, 8], text),
    });
    const row0 = (out.logits.data as Float32Array).slice(0, 8 * vlm.vocabSize);
    assert.ok(maxRelDiff(row0, textOnly.logits.data as Float32Array) < 1e-5, 'text row = decoder alone');
  });

  test('gradients reach the projector and the vision tower through the splice (central differences)', async () => {
    const folder = loadModelFolder(fixtureDir('llava_gpt2_vit_linear'));
    const vlm = folder.model as Vlm;
    const ref = expected('llava_gpt2_vit_linear');
    const ids = ref.get('ids')!;
    const [b, t] = ids.shape;
    const graph = new Graph();
    const pb = new ParamBuilder(graph);
    const idsIn = graph.input('ids', 'int64', [b, t]);
    const pixels = graph.input('pixel_values', 'float32', ref.get('pixel_values')!.shape);
    const out = vlm.forward(pb, { ids: idsIn, pixelValues: pixels });
    const probe = randn([b, t, vlm.vocabSize], 5, 'float32');
    const loss = T.reduceSum(T.mul(out.logits, graph.constant(probe)));
    const names = [
      'multi_modal_projector.linear_1.weight',
      'vision_tower.vit.embeddings.patch_embeddings.projection.weight',
    ];
    const params = names.map((n) => graph.inputs.get(n)!);
    const grads = grad(loss, params);
    const frozen = new Map([...folder.weights].filter(([k]) => !names.includes(k)));
    const outputs = Object.fromEntries([['loss', loss], ...grads.map((g, i) => [`grad.${i}`, g] as const)]);
    const program = await Program.compile(graph, { outputs, bind: frozen });
    const feeds = (over: Map<string, HostTensor>): Record<string, HostTensor> => ({
      ids,
      pixel_values: ref.get('pixel_values')!,
      ...Object.fromEntries(names.map((n) => [n, over.get(n) ?? folder.weights.get(n)!])),
    });
    const base = await program.run(feeds(new Map()));
    for (const [i, name] of names.entries()) {
      const w = folder.weights.get(name)!;
      const dir = randn([...w.shape], 10 + i, 'float32');
      // A unit-norm direction and a step small enough for the loss to be linear along it, yet large enough
      // that float32 round-off in the summed loss stays far below the tolerance.
      const norm = Math.sqrt((dir.data as Float32Array).reduce((s, x) => s + x * x, 0));
      (dir.data as Float32Array).forEach((x, j, a) => {
        a[j] = x / norm;
      });
      const h = 1e-2;
      const shifted = (sign: number): HostTensor => {
        const data = Float32Array.from(
          w.data as Float32Array,
          (x, j) => x + sign * h * (dir.data[j] as number),
        );
        return { ...w, data };
      };
      const plus = (await program.run(feeds(new Map([[name, shifted(1)]])))).loss.data[0] as number;
      const minus = (await program.run(feeds(new Map([[name, shifted(-1)]])))).loss.data[0] as number;
      const numeric = (plus - minus) / (2 * h);
      const g = base[`grad.${i}`].data as Float32Array;
      const analytic = g.reduce((s, x, j) => s + x * (dir.data[j] as number), 0);
      assert.ok(Math.abs(analytic) > 1e-3, `${name}: gradient is not zero`);
      // float32 differences of a loss summed over every logit resolve the slope to ~0.5% (they vary that much
      // with h); exactness of each op's gradient is checked in float64 by test/engine/ops-grad.test.ts.
      assert.ok(
        Math.abs(numeric - analytic) <= 1e-2 * Math.abs(analytic),
        `${name}: ${analytic} vs ${numeric}`,
      );
    }
    await program.release();
  });

  test('expandImagePlaceholders repeats each placeholder once per image feature', () => {
    assert.deepEqual(expandImagePlaceholders([1, 9, 2, 9], 9, 3), [1, 9, 9, 9, 2, 9, 9, 9]);
  });
});

describe('components', () => {
  test('LLaVA parameters split into encoder / projector / decoder, LoRA adapters follow their module', () => {
    const folder = loadModelFolder(fixtureDir('llava_llama_clip_mlp'));
    const groups = groupByComponent(parameterSpecs(folder).keys());
    assert.equal(groups.projector.length, 4);
    assert.equal(groups.head.length, 0);
    assert.ok(
      groups.encoder.every((n) => n.startsWith('vision_tower.vision_model.')),
      'encoder names',
    );
    assert.ok(groups.decoder.includes('language_model.lm_head.weight'), 'lm_head belongs to the decoder');
    assert.equal(groups.encoder.length + groups.projector.length + groups.decoder.length, folder.specs.size);
    assert.equal(componentOf('language_model.model.layers.0.self_attn.q_proj.lora_A.weight'), 'decoder');
    assert.equal(
      componentOf('vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.lora_B.weight'),
      'encoder',
    );
  });

  test('classifier heads and single-component models', () => {
    assert.equal(componentOf('score.weight'), 'head');
    assert.equal(componentOf('classifier.bias'), 'head');
    assert.equal(componentOf('vit.encoder.layer.0.output.dense.weight'), 'encoder');
    assert.equal(componentOf('h.0.attn.c_attn.weight'), 'decoder');
    assert.equal(componentOf('model.embed_tokens.weight'), 'decoder');
  });
});
