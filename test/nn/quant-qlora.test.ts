/**
 * QLoRA end to end (`strategy.quantize_base` in a training YAML): LoRA on a 4-bit frozen base tracks LoRA on the
 * float32 base. Stated tolerance: the training loss of every one of 30 steps within 3% (relative) of float32
 * LoRA's for nf4 with double quantization and within 7% for int4 (uniform levels fit normal weights worse than
 * NF4's quantiles), while it falls by over 12%. The saved model folder holds
 * float weights (the dequantized base plus the merged adapters). Bad input: a 4-bit checkpoint quantized with
 * another block size, a fully trained quantized base, a block size that is not a multiple of 16.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { initModelFolder } from '../../src/models/hf/init-folder.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import {
  loadQuantizedBase,
  type QuantModule,
  quantizeModule,
  quantizeModules,
  saveQuantizedBase,
} from '../../src/nn/quant.ts';
import { loadTrainConfig, parseTrainConfig } from '../../src/train/config.ts';
import { readJsonl } from '../../src/train/logging/jsonl-log.ts';
import { runTraining } from '../../src/train/run-training.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-qlora-'));

function trainLosses(name: string): number[] {
  return readJsonl(join(root, 'logs', name, 'metrics.jsonl'))
    .records.filter((r) => r.split === 'train')
    .map((r) => r.loss as number);
}

async function finetune(name: string, quant: string): Promise<number[]> {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'grid')}, seq_len: 96, train_on: all }
model: { from: ${join(root, 'base')} }
strategy:
  kind: lora
  lora: { r: 8, alpha: 16, targets: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj] }
${quant}
training: { max_steps: 30, batch_size: 8, lr: 0.01, schedule: constant, log_every: 1 }
`,
  );
  await runTraining(loadTrainConfig(file), { configFile: file, quiet: true });
  return trainLosses(name);
}

describe('QLoRA: LoRA on a 4-bit base', () => {
  test('setup: a small Qwen2 base folder and a text task', async () => {
    initModelFolder(
      {
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        vocab_size: 128,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 128,
        tie_word_embeddings: true,
      },
      join(root, 'base'),
      { seed: 3 },
    );
    writeFileSync(
      join(root, 'tasks.yaml'),
      'tasks:\n  grid:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 64 }, modality: text, rows: 2, cols: 2, questions_per_image: 1 }\n',
    );
    await buildTasksFromFile(join(root, 'tasks.yaml'), { outDir: join(root, 'tasks'), quiet: true });
  });

  test('nf4 (double quantization) and int4 track float32 LoRA within 3% and 7% at every step', async () => {
    const float = await finetune('lora', '');
    const nf4 = await finetune('qlora-nf4', '  quantize_base: nf4\n  double_quant: true');
    const int4 = await finetune('qlora-int4', '  quantize_base: int4');
    assert.equal(float.length, 30);
    assert.ok(float[29] < 0.88 * float[0], `the loss falls: ${float[0]} → ${float[29]}`);
    for (const [name, q, tolerance] of [
      ['nf4', nf4, 0.03],
      ['int4', int4, 0.07],
    ] as const) {
      const worst = Math.max(...q.map((l, i) => Math.abs(l - float[i]) / float[i]));
      console.log(
        `${name}: largest relative loss difference to float32 LoRA over 30 steps ${worst.toExponential(2)}`,
      );
      assert.ok(worst < tolerance, `${name}: ${worst}`);
      assert.ok(
        q.some((l, i) => l !== float[i]),
        `${name}: the base really is quantized`,
      );
    }
    const saved = loadModelFolder(join(root, 'models', 'qlora-nf4'));
    assert.ok(saved.weights.get('model.layers.0.self_attn.q_proj.weight'), 'float weights, adapters merged');
    assert.ok(![...saved.weights.keys()].some((k) => k.includes('.q4')));
  });

  test('bad input: a 4-bit checkpoint of another block size, a fully trained 4-bit base, a bad block size', () => {
    const m: QuantModule = {
      path: 'p',
      rows: 32,
      cols: 256,
      format: 'nf4',
      blockSize: 64,
      doubleQuant: false,
      init: { kind: 'normal', std: 0.02 },
    };
    const w = Float32Array.from({ length: 32 * 256 }, (_, i) => Math.sin(i) * 0.02);
    const file = join(root, 'base-nf4.safetensors');
    saveQuantizedBase(file, quantizeModule({ ...m, blockSize: 128 }, w), [{ ...m, blockSize: 128 }]);
    assert.throws(
      () => loadQuantizedBase(file, [m]),
      (e: Error) =>
        e.message === `${file}: quantized with block size 128; the model's 4-bit base uses block size 64`,
    );
    const given = quantizeModule({ ...m, blockSize: 128 }, w);
    assert.throws(
      () => quantizeModules([m], (n) => given.get(n), 0),
      (e: Error) =>
        /^the starting weights: 'p\.weight\.absmax' holds 64 block scales for 8192 weights, so it was quantized with block size 128; the model's 4-bit base uses block size 64$/.test(
          e.message,
        ),
    );
    const base = {
      name: 'x',
      data: { task: 't', seq_len: 8 },
      model: { from: 'm' },
      training: { max_steps: 1 },
    };
    assert.throws(
      () => parseTrainConfig({ ...base, strategy: { kind: 'full', quantize_base: 'nf4' } }, 'run.yaml'),
      (e: Error) => /^run\.yaml: strategy\.quantize_base: a 4-bit base is frozen/.test(e.message),
    );
    assert.throws(
      () =>
        parseTrainConfig(
          {
            ...base,
            strategy: {
              kind: 'lora',
              lora: { r: 2, alpha: 4, targets: ['q_proj'] },
              quantize_base: 'int4',
              quant_block_size: 24,
            },
          },
          'run.yaml',
        ),
      (e: Error) => /^run\.yaml: strategy\.quant_block_size: /.test(e.message),
    );
  });

  test('cleanup', () => {
    rmSync(root, { recursive: true, force: true });
  });
});
