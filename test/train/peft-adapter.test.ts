// LoRA adapters in Hugging Face PEFT's layout (issue 9 #5). The golden names and fields follow PEFT's sources
// (huggingface/peft: tuners/lora/config.py LoraConfig fields; utils/save_and_load.py get_peft_model_state_dict,
// whose keys are `base_model.model.<module>.lora_A.weight` with the adapter name removed): adapter_config.json has
// peft_type LORA, r, lora_alpha, lora_dropout, target_modules, use_rslora, fan_in_fan_out (GPT-2's Conv1D) and
// base_model_name_or_path. Round trip: save → load onto the base → the same weights and the same logits as the
// unmerged LoRA forward.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { readSafetensors } from '../../src/engine/io/safetensors.ts';
import { Graph } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { loadModelFolder, type ModelFolder } from '../../src/models/hf/model-folder.ts';
import type { LoraConfig } from '../../src/nn/lora.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import { parseTrainConfig } from '../../src/train/config.ts';
import { applyPeftAdapter, loraModulesOf, savePeftAdapter } from '../../src/train/peft-adapter.ts';
import { runTraining } from '../../src/train/run-training.ts';
import { Rng } from '../../src/util/random.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/models');
const root = mkdtempSync(join(tmpdir(), 'tlab-peft-'));
after(() => rmSync(root, { recursive: true, force: true }));

function randomAdapters(folder: ModelFolder, lora: LoraConfig) {
  const modules = loraModulesOf(folder, lora);
  const rng = new Rng(7);
  const weights = new Map<string, HostTensor>(folder.weights);
  for (const m of modules.values()) {
    const t = (shape: number[]) => ({
      dtype: 'float32' as const,
      shape,
      data: Float32Array.from({ length: shape[0] * shape[1] }, () => rng.normal() * 0.1),
    });
    weights.set(`${m.path}.lora_A.weight`, t([lora.r, m.inFeatures]));
    weights.set(`${m.path}.lora_B.weight`, t([m.outFeatures, lora.r]));
  }
  return { modules, weights };
}

test('GPT-2: key names, shapes and adapter_config.json fields as PEFT writes them', () => {
  const folder = loadModelFolder(join(FIXTURES, 'gpt2_lm'));
  const lora: LoraConfig = { r: 2, alpha: 4, dropout: 0.05, targets: ['c_attn'] };
  const { modules, weights } = randomAdapters(folder, lora);
  const dir = join(root, 'gpt2-adapter');
  savePeftAdapter(dir, folder, modules.values(), weights, { lora, baseModel: 'models/gpt2_lm' });
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.deepEqual(
    {
      peft_type: config.peft_type,
      task_type: config.task_type,
      r: config.r,
      lora_alpha: config.lora_alpha,
      lora_dropout: config.lora_dropout,
      use_rslora: config.use_rslora,
      fan_in_fan_out: config.fan_in_fan_out,
      bias: config.bias,
      target_modules: config.target_modules,
      base_model_name_or_path: config.base_model_name_or_path,
    },
    {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 2,
      lora_alpha: 4,
      lora_dropout: 0.05,
      use_rslora: false,
      fan_in_fan_out: true,
      bias: 'none',
      target_modules: ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn'],
      base_model_name_or_path: 'models/gpt2_lm',
    },
  );
  const saved = readSafetensors(join(dir, 'adapter_model.safetensors'));
  assert.deepEqual([...saved].map(([k, t]) => [k, t.shape]).sort(), [
    ['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [2, 32]],
    ['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [96, 2]],
    ['base_model.model.transformer.h.1.attn.c_attn.lora_A.weight', [2, 32]],
    ['base_model.model.transformer.h.1.attn.c_attn.lora_B.weight', [96, 2]],
  ]);
});

test('Llama: PEFT keys under base_model.model.model.layers.*, Linear layout (fan_in_fan_out false)', () => {
  const folder = loadModelFolder(join(FIXTURES, 'llama_lm'));
  const lora: LoraConfig = { r: 4, alpha: 8, rsLora: true, targets: ['q_proj', 'v_proj'] };
  const { modules, weights } = randomAdapters(folder, lora);
  const dir = join(root, 'llama-adapter');
  savePeftAdapter(dir, folder, modules.values(), weights, { lora, baseModel: 'base' });
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(config.fan_in_fan_out, false);
  assert.equal(config.use_rslora, true);
  assert.ok(config.target_modules.includes('model.layers.0.self_attn.q_proj'), config.target_modules.join());
  const keys = [...readSafetensors(join(dir, 'adapter_model.safetensors')).keys()];
  assert.ok(keys.includes('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'), keys.join());
});

test('round trip: the adapter loaded onto the base gives the LoRA model’s logits', async () => {
  const folder = loadModelFolder(join(FIXTURES, 'gpt2_lm'));
  const lora: LoraConfig = { r: 2, alpha: 4, targets: ['c_attn', 'c_fc'] };
  const { modules, weights } = randomAdapters(folder, lora);
  const dir = join(root, 'roundtrip');
  savePeftAdapter(dir, folder, modules.values(), weights, { lora, baseModel: 'base' });
  const merged = applyPeftAdapter(dir, folder, folder.weights);
  assert.ok(![...merged.keys()].some((k) => k.includes('lora_')), 'adapters folded into the weights');
  const changed = [...merged]
    .filter(([n, t]) => t !== folder.weights.get(n))
    .map(([n]) => n)
    .sort();
  assert.deepEqual(changed, [
    'h.0.attn.c_attn.weight',
    'h.0.mlp.c_fc.weight',
    'h.1.attn.c_attn.weight',
    'h.1.mlp.c_fc.weight',
  ]);
  const ids: HostTensor = { dtype: 'int64', shape: [1, 6], data: BigInt64Array.of(5n, 9n, 3n, 40n, 7n, 2n) };
  assert.equal(folder.kind, 'causal-lm');
  const model = folder.kind === 'causal-lm' ? folder.model : null;
  const logits = async (withLora: boolean, w: ReadonlyMap<string, HostTensor>) => {
    const g = new Graph();
    const pb = new ParamBuilder(g, 'float32', withLora ? lora : null);
    const input = g.input('input_ids', 'int64', [1, 6]);
    const out = model!.forward(pb, { ids: input });
    const program = await Program.compile(g, { outputs: { logits: out.logits } });
    try {
      const feeds: Record<string, HostTensor> = { input_ids: ids };
      for (const name of pb.specs.keys()) feeds[name] = w.get(name)!;
      return Array.from((await program.run(feeds)).logits.data as Float32Array);
    } finally {
      await program.release();
    }
  };
  const unmerged = await logits(true, weights);
  const loaded = await logits(false, merged);
  const plain = await logits(false, folder.weights);
  let diff = 0;
  let moved = 0;
  for (let i = 0; i < unmerged.length; i++) {
    diff = Math.max(diff, Math.abs(unmerged[i] - loaded[i]));
    moved = Math.max(moved, Math.abs(unmerged[i] - plain[i]));
  }
  assert.ok(moved > 1e-3, 'the adapter changes the logits');
  assert.ok(diff < 1e-4, `logits differ by ${diff}`);
});

test('adapters PEFT features this tool does not implement are refused by name', () => {
  const folder = loadModelFolder(join(FIXTURES, 'gpt2_lm'));
  const lora: LoraConfig = { r: 2, alpha: 4, targets: ['c_attn'] };
  const { modules, weights } = randomAdapters(folder, lora);
  const dir = join(root, 'variants');
  savePeftAdapter(dir, folder, modules.values(), weights, { lora, baseModel: 'base' });
  const file = join(dir, 'adapter_config.json');
  const good = JSON.parse(readFileSync(file, 'utf8'));
  for (const [change, want] of [
    [{ use_dora: true }, /adapter_config\.json: use_dora: DoRA adapters are not supported/],
    [{ peft_type: 'IA3' }, /adapter_config\.json: peft_type: only LoRA adapters/],
    [{ bias: 'all' }, /adapter_config\.json: bias: only bias: 'none'/],
  ] as const) {
    writeFileSync(file, JSON.stringify({ ...good, ...change }));
    assert.throws(() => applyPeftAdapter(dir, folder, folder.weights), want);
  }
  assert.throws(
    () => applyPeftAdapter(join(root, 'nowhere'), folder, folder.weights),
    /not a PEFT adapter folder/,
  );
});

test('tlab finetune with LoRA writes the PEFT adapter beside the merged model; model.adapter loads it', async () => {
  writeFileSync(
    join(root, 'rows.jsonl'),
    Array.from({ length: 24 }, (_, i) => `{"q":"${i} plus 1","a":"${i + 1}"}`).join('\n'),
  );
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  sums:\n    dataset: rows.jsonl\n    user_prompt: "{q}"\n    assistant_text_column: a\n',
  );
  await buildTasksFromFile(join(root, 'tasks.yaml'), { outDir: join(root, 'tasks'), quiet: true });
  const common = { out: root, data: { task: join(root, 'tasks', 'sums'), seq_len: 24, eval_split: null } };
  const run = (config: Record<string, unknown>) =>
    runTraining(parseTrainConfig({ ...common, ...config }, 'run.yaml'), {
      configFile: 'run.yaml',
      quiet: true,
    });
  await run({
    name: 'base',
    tokenizer: { build: 'word' },
    model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 2 } },
    training: { max_steps: 2, batch_size: 4 },
  });
  const base = join(root, 'models', 'base');
  const tuned = await run({
    name: 'tuned',
    model: { from: base },
    strategy: { kind: 'lora', lora: { r: 2, alpha: 4, targets: ['c_attn'] } },
    training: { max_steps: 3, batch_size: 4, lr: 0.05 },
  });
  assert.equal(tuned.paths.adapter, join(root, 'models', 'tuned-adapter'));
  const baseFolder = loadModelFolder(base);
  const merged = applyPeftAdapter(tuned.paths.adapter!, baseFolder, baseFolder.weights);
  const saved = loadModelFolder(tuned.paths.model).weights;
  for (const [name, t] of saved) {
    const a = t.data as Float32Array;
    const b = merged.get(name)!.data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${name}[${i}]`);
  }
  const again = await run({
    name: 'from-adapter',
    model: { from: base, adapter: tuned.paths.adapter },
    training: { max_steps: 1, batch_size: 4 },
  });
  assert.equal(again.steps, 1);
  assert.equal(again.paths.adapter, null, 'a full fine-tune writes no adapter');
});
