// The README's component strategy, as written there, plans the parameters it describes; Hugging Face module
// prefixes are aliases of the component names (issue 9 #4).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { componentOf } from '../../src/models/components.ts';
import type { ParamSpec } from '../../src/nn/module.ts';
import { StrategySchema } from '../../src/train/config.ts';
import { COMPONENT_PREFIXES, strategyOf } from '../../src/train/run-training.ts';
import { loraFor, planParameters } from '../../src/train/strategy.ts';

const README = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');

function readmeStrategy() {
  const blocks = [...README.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  const block = blocks.find((b) => b.includes('kind: components'));
  assert.ok(block, 'the README shows a component strategy');
  return StrategySchema.parse(YAML.parse(block).strategy);
}

const spec = (name: string, shape: number[]): ParamSpec => ({
  name,
  shape,
  dtype: 'float32',
  init: { kind: 'zeros' },
});
const llavaSpecs = [
  spec('vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight', [8, 8]),
  spec('vision_tower.vision_model.post_layernorm.weight', [8]),
  spec('multi_modal_projector.linear_1.weight', [8, 8]),
  spec('multi_modal_projector.linear_1.bias', [8]),
  spec('language_model.model.layers.0.self_attn.q_proj.weight', [8, 8]),
  spec('language_model.model.layers.0.self_attn.q_proj.lora_A.weight', [2, 8]),
  spec('language_model.model.layers.0.self_attn.q_proj.lora_B.weight', [8, 2]),
  spec('language_model.lm_head.weight', [16, 8]),
];

test("the README's component strategy: frozen vision tower, full projector at 1e-3, LoRA decoder", () => {
  const strategy = strategyOf({ strategy: readmeStrategy() });
  const lora = loraFor(strategy, COMPONENT_PREFIXES);
  assert.ok(lora, 'the decoder trains with LoRA');
  const targeted = (path: string) => lora.targets.some((t) => (t as RegExp).test(path));
  assert.ok(targeted('language_model.model.layers.0.self_attn.q_proj'), 'decoder q_proj gets an adapter');
  assert.ok(
    !targeted('vision_tower.vision_model.encoder.layers.0.self_attn.q_proj'),
    'the frozen tower does not',
  );
  const plan = planParameters(llavaSpecs, strategy, 3e-4, componentOf);
  assert.deepEqual(plan.trainable, [
    'multi_modal_projector.linear_1.weight',
    'multi_modal_projector.linear_1.bias',
    'language_model.model.layers.0.self_attn.q_proj.lora_A.weight',
    'language_model.model.layers.0.self_attn.q_proj.lora_B.weight',
  ]);
  const lrOf = (name: string) => plan.baseLrs[plan.groups.findIndex((g) => g.params.includes(name))];
  assert.equal(lrOf('multi_modal_projector.linear_1.weight'), 1e-3);
  assert.equal(lrOf('language_model.model.layers.0.self_attn.q_proj.lora_A.weight'), 3e-4);
});

test('aliases and component names plan the same; naming one component twice is an error', () => {
  const byAlias = planParameters(
    llavaSpecs,
    { kind: 'components', components: { vision_tower: 'full', language_model: 'frozen' } },
    1e-3,
    componentOf,
  );
  const byName = planParameters(
    llavaSpecs,
    { kind: 'components', components: { encoder: 'full', decoder: 'frozen' } },
    1e-3,
    componentOf,
  );
  assert.deepEqual(byAlias, byName);
  assert.throws(
    () =>
      planParameters(
        llavaSpecs,
        { kind: 'components', components: { encoder: 'full', vision_tower: 'frozen' } },
        1e-3,
        componentOf,
      ),
    /strategy\.components: 'vision_tower' and 'encoder' both name the encoder component; keep one/,
  );
  assert.throws(
    () =>
      planParameters(
        llavaSpecs,
        { kind: 'components', components: { vision_towr: 'full' } },
        1e-3,
        componentOf,
      ),
    /strategy\.components\.vision_towr: no such component \(did you mean 'vision_tower'/,
  );
});
