/**
 * Representation extraction on the tiny GPT-2 fixture (test/fixtures/models/gpt2_lm): the saved residual states
 * are ForwardRunner's; 'norm-input' states equal LayerNorm_i(h_i)·γ + β computed here from the residual ones and the
 * ln_1 weights; shot trimming shortens prompts; duplicates are counted per layer; a PEFT adapter folder is merged as
 * W + (α/r)·(B·A)ᵀ (GPT-2's Conv1D layout), computed here by hand.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { extractRepresentations, openRepresentations } from '../../src/geometry/extract.ts';
import { loadConditionModel } from '../../src/geometry/model-source.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { Rng } from '../../src/util/random.ts';
import { close } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-geometry-extract-'));
after(() => rmSync(root, { recursive: true, force: true }));
const fixture = new URL('../fixtures/models/gpt2_lm', import.meta.url).pathname;

test('extraction: residual vs normalised block inputs, shots, duplicates and labels', async () => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    // the fixture's tokenizer knows lower-case words only, and its context is 32 tokens: the prompt is the grid
    'tasks:\n  g:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 20, test: 12 }, modality: text, rows: 1, cols: 3, vocab_subset_size: 3, vocab: [bird, frog, cat, horse, dog], questions_per_image: 2 }\n    user_prompt: "{grid_text}"\n    few_shot: { k: 1 }\n    dedupe: false\n',
  );
  const built = spawnSync(
    process.execPath,
    ['bin/tlab.js', 'data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 't'), '--quiet'],
    { encoding: 'utf8' },
  );
  assert.equal(built.status, 0, built.stderr);
  const task = join(root, 't', 'g');
  const base = { model: fixture, task, split: 'test', labels: ['label', 'field:col'], batchSize: 5 };
  const res = await extractRepresentations({ ...base, shots: 0 }, join(root, 'res'));
  const normed = await extractRepresentations(
    { ...base, shots: 0, states: 'norm-input' },
    join(root, 'norm'),
  );
  assert.equal(normed.states, 'norm-input');
  const shot = await extractRepresentations({ ...base, shots: 1 }, join(root, 'shot'));
  assert.equal(res.n, 24);
  assert.deepEqual(
    res.layers.map((l) => l.layer),
    [0, 1, 2],
  );
  assert.equal(res.layers[0].duplicates, 23); // embeddings of the same last token ('|')
  assert.ok(res.layers[2].duplicates >= 12, 'each grid is asked twice: its prompt repeats');
  const r = openRepresentations(join(root, 'res'));
  assert.deepEqual(
    r.labels.map((l) => l.name),
    ['label', 'col'],
  );
  assert.deepEqual(r.labels[1].classes, ['0', '1', '2']);
  const n = openRepresentations(join(root, 'norm'));
  const folder = loadModelFolder(fixture);
  const d = 32;
  for (const layer of [0, 1]) {
    const h = r.layer(layer).x;
    const y = n.layer(layer).x;
    const g = folder.weights.get(`h.${layer}.ln_1.weight`)!.data as Float32Array;
    const b = folder.weights.get(`h.${layer}.ln_1.bias`)!.data as Float32Array;
    for (let i = 0; i < h.rows; i++) {
      const row = Array.from(h.data.subarray(i * d, (i + 1) * d));
      const mean = row.reduce((s, v) => s + v, 0) / d;
      const sd = Math.sqrt(row.reduce((s, v) => s + (v - mean) ** 2, 0) / d + 1e-5);
      for (let j = 0; j < d; j++)
        close(y.data[i * d + j], ((row[j] - mean) / sd) * g[j] + b[j], 1e-5, `ln_1 of layer ${layer}`);
    }
  }
  // the last layer is after the final norm in both
  assert.deepEqual(Array.from(n.layer(2).x.data), Array.from(r.layer(2).x.data));
  // one solved turn before each question changes the states
  const s = openRepresentations(join(root, 'shot'));
  assert.equal(shot.shots, 1);
  assert.notDeepEqual(Array.from(s.layer(2).x.data), Array.from(r.layer(2).x.data));
  await assert.rejects(
    extractRepresentations({ ...base, shots: 3 }, join(root, 'bad')),
    /has 1 built few-shot turns, 3 were asked for/,
  );
});

test('a PEFT LoRA adapter folder is merged into the base weights (Conv1D layout, α/r scaling)', () => {
  const adapter = join(root, 'adapter');
  cpSync(fixture, join(root, 'base'), { recursive: true });
  const rng = new Rng(9);
  const r = 2;
  const a = Float32Array.from({ length: r * 32 }, () => rng.normal());
  const bm = Float32Array.from({ length: 96 * r }, () => rng.normal());
  rmSync(adapter, { recursive: true, force: true });
  cpSync(fixture, adapter, { recursive: true, filter: (src) => src === fixture });
  writeFileSync(
    join(adapter, 'adapter_config.json'),
    JSON.stringify({ r, lora_alpha: 4, fan_in_fan_out: true, target_modules: ['c_attn'], peft_type: 'LORA' }),
  );
  writeSafetensors(join(adapter, 'adapter_model.safetensors'), {
    'base_model.model.transformer.h.1.attn.c_attn.lora_A.weight': {
      dtype: 'float32',
      shape: [r, 32],
      data: a,
    },
    'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight': {
      dtype: 'float32',
      shape: [96, r],
      data: bm,
    },
  });
  const merged = loadConditionModel({ model: join(root, 'base'), adapter });
  assert.deepEqual(merged.mergedModules, ['h.1.attn.c_attn.weight']);
  const w0 = loadModelFolder(fixture).weights.get('h.1.attn.c_attn.weight')!.data as Float32Array;
  const w1 = merged.weights.get('h.1.attn.c_attn.weight')!.data as Float32Array;
  for (let i = 0; i < 32; i++)
    for (let o = 0; o < 96; o++) {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += bm[o * r + k] * a[k * 32 + i];
      close(w1[i * 96 + o], w0[i * 96 + o] + (4 / r) * ba, 1e-5, `W[${i}, ${o}]`);
    }
  assert.deepEqual(
    merged.weights.get('h.0.attn.c_attn.weight')!.data,
    loadModelFolder(fixture).weights.get('h.0.attn.c_attn.weight')!.data,
  );
  writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ r: 0, lora_alpha: 4 }));
  assert.throws(
    () => loadConditionModel({ model: join(root, 'base'), adapter }),
    /adapter_config\.json: r must be a positive integer/,
  );
});
