/**
 * Hugging Face folders: save → load round trips (same weights, same logits), the exact checkpoint keys and
 * config fields transformers expects, sharding, half-precision saving, and loading a folder as another kind
 * (a causal LM as a sequence classifier, an image classifier as an encoder).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readSafetensors, writeSafetensors } from '../../src/engine/io/safetensors.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { loadModelFolder, saveModelFolder } from '../../src/models/hf/model-folder.ts';
import { readWeightIndex } from '../../src/models/hf/weight-files.ts';
import { assertClose, expected, fixtureDir, runModel } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tlab-hf-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function savedKeys(dir: string): string[] {
  return [...readWeightIndex(dir).entries.keys()].sort();
}

function savedConfig(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
}

function sameWeights(a: ReadonlyMap<string, HostTensor>, b: ReadonlyMap<string, HostTensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) assert.deepEqual(b.get(k)!.data, t.data, k);
}

describe('save → load round trip', () => {
  for (const name of [
    'gpt2_lm',
    'gpt2_seqcls',
    'llama_lm',
    'llama_tied_headdim',
    'qwen2_tied_f16',
    'llama_seqcls',
    'vit_cls',
    'clip_vision',
    'clip_cls',
    'llava_gpt2_vit_linear',
    'llava_llama_clip_mlp',
  ]) {
    test(`${name}: same kind, config and weights after saving and loading again`, () => {
      const a = loadModelFolder(fixtureDir(name));
      const dir = join(tmp, `rt-${name}`);
      saveModelFolder(dir, a, a.weights, { filesFrom: a.dir });
      const b = loadModelFolder(dir);
      assert.equal(b.kind, a.kind);
      assert.equal(
        b.config.model_type,
        a.model.modelType === 'clip_vision_model' && a.config.model_type === 'clip'
          ? 'clip'
          : a.config.model_type,
      );
      assert.deepEqual(b.report.ignored, []);
      sameWeights(a.weights, b.weights);
    });
  }

  test('logits are the same after a round trip (GPT-2, sharded Llama, LLaVA)', async () => {
    for (const name of ['gpt2_lm', 'llama_lm', 'llava_gpt2_vit_linear']) {
      const a = loadModelFolder(fixtureDir(name));
      const dir = join(tmp, `logits-${name}`);
      saveModelFolder(dir, a, a.weights, { maxShardBytes: 40_000 });
      assert.ok(existsSync(join(dir, 'model.safetensors.index.json')), `${name} is sharded`);
      const b = loadModelFolder(dir);
      const ref = expected(name);
      const feeds: Record<string, HostTensor> = { input_ids: ref.get('ids')! };
      if (ref.has('attention_mask')) feeds.attention_mask = ref.get('attention_mask')!;
      if (ref.has('pixel_values')) feeds.pixel_values = ref.get('pixel_values')!;
      const out = await runModel(b, b.weights, feeds);
      assertClose(out.logits, ref.get('logits')!, `${name} logits after a round trip`);
    }
  });
});

describe('the folder transformers expects', () => {
  test('GPT2LMHeadModel: transformer.* keys, tied head not written, mask buffers dropped, tokenizer copied', () => {
    const a = loadModelFolder(fixtureDir('gpt2_lm'));
    assert.equal(a.report.ignored.length, 4, 'attn.bias and attn.masked_bias of 2 layers');
    assert.ok(a.tokenizer, 'tokenizer.json was loaded');
    const dir = join(tmp, 'gpt2-layout');
    saveModelFolder(dir, a, a.weights, { filesFrom: a.dir });
    const keys = savedKeys(dir);
    assert.ok(
      keys.every((k) => k.startsWith('transformer.')),
      keys.join(','),
    );
    assert.ok(
      keys.includes('transformer.h.1.attn.c_attn.weight'),
      "keys.includes('transformer.h.1.attn.c_attn.weight')",
    );
    assert.ok(
      !keys.some((k) => k.includes('lm_head') || /\.attn\.(bias|masked_bias)$/.test(k)),
      'no head, no buffers',
    );
    const config = savedConfig(dir);
    assert.deepEqual(config.architectures, ['GPT2LMHeadModel']);
    assert.equal(config.model_type, 'gpt2');
    assert.equal(config.torch_dtype, 'float32');
    assert.ok(
      existsSync(join(dir, 'tokenizer.json')) && existsSync(join(dir, 'tokenizer_config.json')),
      "existsSync(join(dir, 'tokenizer.json')) && existsSync(join(dir, 'tokenizer_config.js...",
    );
    const header = readSafetensors(join(dir, 'model.safetensors'), ['transformer.h.0.attn.c_attn.weight']);
    assert.deepEqual(header.get('transformer.h.0.attn.c_attn.weight')!.shape, [32, 96], 'Conv1D [in, out]');
  });

  test('LlamaForCausalLM: model.* + lm_head.weight; sharded index with total_size', () => {
    const a = loadModelFolder(fixtureDir('llama_lm'));
    const dir = join(tmp, 'llama-layout');
    const files = saveModelFolder(dir, a, a.weights, { maxShardBytes: 60_000 });
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    assert.ok(shards.length >= 2, 'shards.length >= 2');
    assert.deepEqual([...new Set(Object.values(index.weight_map))].sort(), shards.sort());
    const total = [...a.weights.values()].reduce((s, t) => s + t.data.byteLength, 0);
    assert.equal(index.metadata.total_size, total);
    const keys = savedKeys(dir);
    assert.ok(
      keys.includes('lm_head.weight') && keys.includes('model.layers.0.self_attn.k_proj.weight'),
      "keys.includes('lm_head.weight') && keys.includes('model.layers.0.self_attn.k_proj.we...",
    );
    assert.ok(
      keys.every((k) => k.startsWith('model.') || k === 'lm_head.weight'),
      "keys.every((k) => k.startsWith('model.') || k === 'lm_head.weight')",
    );
    // Saving again unsharded removes the shards and the index.
    saveModelFolder(dir, a, a.weights);
    assert.ok(
      existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'model.safetensors.index.json')),
      "existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'model.safetenso...",
    );
    assert.ok(!shards.some((f) => existsSync(join(dir, f))), '!shards.some((f) => existsSync(join(dir, f)))');
  });

  test('LLaVA: legacy layout vision_tower.* / multi_modal_projector.* / language_model.model.* / language_model.lm_head', () => {
    const llama = loadModelFolder(fixtureDir('llava_llama_clip_mlp')); // stored with transformers >= 4.52 in-memory names
    const dir = join(tmp, 'llava-layout');
    saveModelFolder(dir, llama, llama.weights);
    const keys = savedKeys(dir);
    assert.ok(
      keys.includes('vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight'),
      "keys.includes('vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight')",
    );
    assert.ok(
      keys.includes('multi_modal_projector.linear_2.weight'),
      "keys.includes('multi_modal_projector.linear_2.weight')",
    );
    assert.ok(
      keys.includes('language_model.model.layers.1.mlp.gate_proj.weight'),
      "keys.includes('language_model.model.layers.1.mlp.gate_proj.weight')",
    );
    assert.ok(
      keys.includes('language_model.lm_head.weight'),
      "keys.includes('language_model.lm_head.weight')",
    );
    const config = savedConfig(dir);
    assert.deepEqual(config.architectures, ['LlavaForConditionalGeneration']);
    assert.equal(config.image_token_index, 79);

    const gpt2 = loadModelFolder(fixtureDir('llava_gpt2_vit_linear'));
    assert.deepEqual(gpt2.report.ignored.sort(), [
      'vision_tower.pooler.dense.bias',
      'vision_tower.pooler.dense.weight',
    ]);
    const dir2 = join(tmp, 'llava-gpt2-layout');
    saveModelFolder(dir2, gpt2, gpt2.weights);
    const keys2 = savedKeys(dir2);
    assert.ok(
      keys2.includes('vision_tower.embeddings.patch_embeddings.projection.weight'),
      "keys2.includes('vision_tower.embeddings.patch_embeddings.projection.weight')",
    );
    assert.ok(
      keys2.includes('language_model.model.h.0.attn.c_attn.weight'),
      "keys2.includes('language_model.model.h.0.attn.c_attn.weight')",
    );
    assert.ok(!keys2.some((k) => k.includes('lm_head')), "!keys2.some((k) => k.includes('lm_head'))");
  });

  test('ViT and CLIP: ViTForImageClassification, ViTModel, CLIPVisionModel and CLIPForImageClassification layouts', () => {
    const vit = loadModelFolder(fixtureDir('vit_cls'));
    const d1 = join(tmp, 'vit-cls');
    saveModelFolder(d1, vit, vit.weights, { labels: ['a', 'b', 'c', 'd', 'e'] });
    assert.ok(
      savedKeys(d1).includes('vit.encoder.layer.0.attention.attention.query.weight'),
      "savedKeys(d1).includes('vit.encoder.layer.0.attention.attention.query.weight')",
    );
    assert.ok(savedKeys(d1).includes('classifier.weight'), "savedKeys(d1).includes('classifier.weight')");
    assert.deepEqual(savedConfig(d1).id2label, { 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' });

    const encoder = loadModelFolder(fixtureDir('vit_cls'), { kind: 'vision-encoder' });
    assert.deepEqual(encoder.report.dropped.sort(), ['classifier.bias', 'classifier.weight']);
    const d2 = join(tmp, 'vit-model');
    saveModelFolder(d2, encoder, encoder.weights);
    assert.ok(savedKeys(d2).includes('embeddings.cls_token'), 'ViTModel keys have no prefix');
    assert.deepEqual(savedConfig(d2).architectures, ['ViTModel']);
    assert.equal(savedConfig(d2).id2label, undefined);

    const clip = loadModelFolder(fixtureDir('clip_vision'));
    assert.deepEqual(clip.report.ignored, ['vision_model.embeddings.position_ids']);
    const clipCls = loadModelFolder(fixtureDir('clip_vision'), {
      kind: 'image-classifier',
      numLabels: 3,
      seed: 1,
    });
    assert.deepEqual(clipCls.report.initialized.sort(), ['classifier.bias', 'classifier.weight']);
    const d3 = join(tmp, 'clip-cls');
    saveModelFolder(d3, clipCls, clipCls.weights);
    const c3 = savedConfig(d3);
    assert.equal(c3.model_type, 'clip');
    assert.deepEqual(c3.architectures, ['CLIPForImageClassification']);
    assert.equal((c3.vision_config as Record<string, unknown>).model_type, 'clip_vision_model');
    assert.equal(loadModelFolder(d3).kind, 'image-classifier');
  });

  test('float16 and bfloat16 saving: torch_dtype written, weights within half precision', () => {
    const a = loadModelFolder(fixtureDir('qwen2_untied'));
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const dir = join(tmp, `qwen-${dtype}`);
      saveModelFolder(dir, a, a.weights, { dtype });
      assert.equal(savedConfig(dir).torch_dtype, dtype);
      assert.equal(readWeightIndex(dir).entries.get('lm_head.weight')!.dtype, dtype);
      const b = loadModelFolder(dir);
      const x = a.weights.get('lm_head.weight')!.data as Float32Array;
      const y = b.weights.get('lm_head.weight')!.data as Float32Array;
      const tol = dtype === 'float16' ? 2 ** -11 : 2 ** -8;
      for (let i = 0; i < x.length; i++)
        assert.ok(
          Math.abs(x[i] - y[i]) <= Math.abs(x[i]) * tol + 1e-7,
          'Math.abs(x[i] - y[i]) <= Math.abs(x[i]) * tol + 1e-7',
        );
    }
  });
});

describe('loading as another kind', () => {
  test('a causal LM folder loads as a sequence classifier: lm_head dropped, score initialised, same backbone', async () => {
    const cls = loadModelFolder(fixtureDir('llama_lm'), {
      kind: 'sequence-classifier',
      numLabels: 4,
      seed: 3,
    });
    assert.equal(cls.kind, 'sequence-classifier');
    assert.deepEqual(cls.report.dropped, ['lm_head.weight']);
    assert.deepEqual(cls.report.initialized, ['score.weight']);
    assert.deepEqual(cls.weights.get('score.weight')!.shape, [4, 48]);
    const ref = expected('llama_lm');
    const out = await runModel(cls, cls.weights, {
      input_ids: ref.get('ids')!,
      attention_mask: ref.get('attention_mask')!,
    });
    assert.deepEqual(out.logits.shape, [2, 4]);
    assertClose(out['hidden_states.2'], ref.get('hidden.2')!, 'classifier backbone = causal LM backbone');
    assert.deepEqual(cls.config.id2label, { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2', 3: 'LABEL_3' });
  });

  test('a sequence classifier folder loads as a causal LM when the head is tied (GPT-2)', () => {
    const lm = loadModelFolder(fixtureDir('gpt2_seqcls'), { kind: 'causal-lm' });
    assert.deepEqual(lm.report.dropped, ['score.weight']);
    assert.equal(lm.weights.size, 2 + 12 * 2 + 2);
  });
});

describe('checkpoint variants', () => {
  test('a fine-tuned GPT-2 file (transformer. prefix and a written tied lm_head) loads; the head copy is ignored', () => {
    const a = loadModelFolder(fixtureDir('gpt2_lm'));
    const dir = join(tmp, 'gpt2-finetuned');
    cpSync(fixtureDir('gpt2_lm'), dir, { recursive: true });
    const w = new Map([...a.weights].map(([k, v]) => [`transformer.${k}`, v]));
    w.set('lm_head.weight', a.weights.get('wte.weight')!);
    writeSafetensors(join(dir, 'model.safetensors'), w);
    const b = loadModelFolder(dir);
    assert.deepEqual(b.report.ignored, ['lm_head.weight']);
    sameWeights(a.weights, b.weights);
  });

  test('a Llama base-model file without the model. prefix loads as a causal LM when the head is tied', () => {
    const a = loadModelFolder(fixtureDir('llama_tied_headdim'));
    const dir = join(tmp, 'llama-base');
    cpSync(fixtureDir('llama_tied_headdim'), dir, { recursive: true });
    writeSafetensors(
      join(dir, 'model.safetensors'),
      new Map([...a.weights].map(([k, v]) => [k.replace(/^model\./, ''), v])),
    );
    sameWeights(a.weights, loadModelFolder(dir).weights);
  });

  test('a full CLIPModel folder loads as its vision tower; text tower and projections are ignored', () => {
    const a = loadModelFolder(fixtureDir('clip_vision'));
    const dir = join(tmp, 'clip-full');
    cpSync(fixtureDir('clip_vision'), dir, { recursive: true });
    const {
      architectures: _a,
      torch_dtype: _t,
      ...vision
    } = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        model_type: 'clip',
        architectures: ['CLIPModel'],
        vision_config: vision,
        text_config: {},
        projection_dim: 16,
      }),
    );
    const w = new Map(a.weights);
    const small = a.weights.get('vision_model.post_layernorm.weight')!;
    for (const k of [
      'text_model.final_layer_norm.weight',
      'visual_projection.weight',
      'text_projection.weight',
      'logit_scale',
    ])
      w.set(k, small);
    writeSafetensors(join(dir, 'model.safetensors'), w);
    const b = loadModelFolder(dir);
    assert.equal(b.kind, 'vision-encoder');
    assert.equal(b.report.ignored.length, 4);
    sameWeights(a.weights, b.weights);
    const out = join(tmp, 'clip-full-saved');
    saveModelFolder(out, b, b.weights);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config.model_type, 'clip_vision_model');
    assert.deepEqual(config.architectures, ['CLIPVisionModel']);
  });
});
