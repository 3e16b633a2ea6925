/**
 * Bad input gives one-line TlabErrors that name the file and the key: config.json with an unknown model_type or a
 * missing/invalid field, weights with a wrong shape, missing or unexpected tensors, a sharded index pointing to a
 * missing shard, a tokenizer.json that does not parse, and image placeholder counts that do not match.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readSafetensors, writeSafetensors } from '../../src/engine/io/safetensors.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { parseHfConfig } from '../../src/models/hf/configs.ts';
import { loadModelFolder, saveModelFolder } from '../../src/models/hf/model-folder.ts';
import { checkImagePlaceholders } from '../../src/models/vlm.ts';
import { TlabError } from '../../src/util/errors.ts';
import { fixtureDir, int64 } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tlab-bad-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

/** A writable copy of a fixture folder. */
function copy(name: string): string {
  const dir = join(tmp, `${name}-${counter++}`);
  cpSync(fixtureDir(name), dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): string {
  const path = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(path, 'utf8'));
  edit(c);
  writeFileSync(path, JSON.stringify(c));
  return path;
}

function editWeights(dir: string, edit: (w: Map<string, HostTensor>) => void): string {
  const path = join(dir, 'model.safetensors');
  const w = readSafetensors(path);
  edit(w);
  writeSafetensors(path, w);
  return path;
}

/** Asserts a one-line TlabError whose message contains every fragment. */
function throwsNaming(fn: () => unknown, ...fragments: string[]): TlabError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TlabError, `expected a TlabError, got ${String(caught)}`);
  const e = caught as TlabError;
  assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
  for (const f of fragments) assert.ok(e.message.includes(f), `'${e.message}' should name '${f}'`);
  return e;
}

describe('config.json', () => {
  test('unknown model_type lists the valid ones', () => {
    const dir = copy('gpt2_lm');
    const path = editConfig(dir, (c) => {
      c.model_type = 'gpt3';
    });
    throwsNaming(
      () => loadModelFolder(dir),
      path,
      'model_type',
      "'gpt3'",
      'gpt2, llama, qwen2, vit, clip_vision_model, clip, llava',
    );
  });

  test('missing model_type and missing size fields are named', () => {
    const dir = copy('gpt2_lm');
    const path = editConfig(dir, (c) => {
      delete c.n_embd;
    });
    throwsNaming(() => loadModelFolder(dir), path, 'n_embd: missing');
    throwsNaming(
      () => parseHfConfig({ hidden_size: 4 }, 'x/config.json'),
      'x/config.json',
      'model_type: missing',
    );
    throwsNaming(
      () =>
        parseHfConfig(
          { model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1 },
          'c.json',
        ),
      'c.json',
      'num_attention_heads: missing',
    );
  });

  test('invalid values name the key, also inside text_config / vision_config', () => {
    throwsNaming(
      () =>
        parseHfConfig(
          {
            model_type: 'qwen2',
            vocab_size: 10,
            hidden_size: 8,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 4,
            num_key_value_heads: 3,
          },
          'q.json',
        ),
      'q.json',
      'num_key_value_heads',
    );
    throwsNaming(
      () =>
        parseHfConfig(
          { model_type: 'llava', text_config: { model_type: 'gpt2', n_embd: 30, n_head: 4 } },
          'l.json',
        ),
      'l.json',
      'text_config.n_head',
    );
    throwsNaming(
      () => parseHfConfig({ model_type: 'llava', vision_config: { model_type: 'llama' } }, 'l.json'),
      'l.json',
      'vision_config.model_type',
      'clip_vision_model, vit',
    );
    throwsNaming(
      () => parseHfConfig({ model_type: 'qwen2_vl' }, 'v.json'),
      'v.json',
      'vocab_size',
      'missing',
    );
    throwsNaming(
      () => parseHfConfig({ model_type: 'qwen2_vl_text' }, 'v.json'),
      'v.json',
      'model_type',
      'not supported',
    );
    throwsNaming(
      () =>
        parseHfConfig(
          { model_type: 'llava', mm_projector_type: 'mlp3x_gelu', text_config: {}, vision_config: {} },
          'p.json',
        ),
      'p.json',
      'mm_projector_type',
    );
  });

  test('an unsupported rope type names rope_scaling.rope_type', () => {
    const dir = copy('llama_lm');
    const path = editConfig(dir, (c) => {
      c.rope_scaling = { rope_type: 'yarn', factor: 4 };
    });
    throwsNaming(
      () => loadModelFolder(dir),
      path,
      'rope_scaling.rope_type',
      'yarn',
      'default, linear, dynamic, llama3',
    );
  });

  test('a config that is not JSON names the line and column', () => {
    const dir = copy('gpt2_lm');
    writeFileSync(join(dir, 'config.json'), '{\n  "model_type": "gpt2",\n  "n_embd": 32,,\n}');
    throwsNaming(() => loadModelFolder(dir), join(dir, 'config.json'), 'line 3');
  });
});

describe('weights', () => {
  test('a tensor with the wrong shape names the file, the key and both shapes', () => {
    const dir = copy('gpt2_lm');
    const path = editWeights(dir, (w) => {
      const t = w.get('h.1.mlp.c_fc.weight')!;
      w.set('h.1.mlp.c_fc.weight', { ...t, shape: [128, 32] });
    });
    throwsNaming(() => loadModelFolder(dir), path, "'h.1.mlp.c_fc.weight'", '[128, 32]', '[32, 128]');
  });

  test('a missing tensor names the file and the key; close names are listed', () => {
    const dir = copy('gpt2_lm');
    const path = editWeights(dir, (w) => {
      w.delete('ln_f.bias');
    });
    const e = throwsNaming(() => loadModelFolder(dir), path, "missing tensor 'transformer.ln_f.bias'");
    assert.ok(e.details?.includes('ln_f.weight'), `details list close names: ${e.details}`);
  });

  test('an unexpected tensor is an error, or a report entry with allowUnexpected', () => {
    const dir = copy('llama_tied_headdim');
    const path = editWeights(dir, (w) => {
      w.set('model.layers.0.mlp.extra_proj.weight', w.get('model.norm.weight')!);
    });
    throwsNaming(
      () => loadModelFolder(dir),
      path,
      "unexpected tensor 'model.layers.0.mlp.extra_proj.weight'",
    );
    const ok = loadModelFolder(dir, { allowUnexpected: true });
    assert.deepEqual(ok.report.unexpected, ['model.layers.0.mlp.extra_proj.weight']);
  });

  test('a tensor that is not floating point is refused', () => {
    const dir = copy('gpt2_lm');
    const path = editWeights(dir, (w) => {
      w.set('ln_f.bias', int64([32], new Array(32).fill(0)));
    });
    throwsNaming(() => loadModelFolder(dir), path, "'ln_f.bias'", 'int64');
  });

  test('a sharded index pointing to a missing shard names the index and the shard', () => {
    const dir = copy('llama_lm');
    unlinkSync(join(dir, 'model-00002-of-00002.safetensors'));
    throwsNaming(
      () => loadModelFolder(dir),
      join(dir, 'model.safetensors.index.json'),
      "'model-00002-of-00002.safetensors'",
    );
  });

  test('an index naming a tensor its shard lacks names both', () => {
    const dir = copy('llama_lm');
    const path = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(path, 'utf8'));
    index.weight_map['model.ghost.weight'] = 'model-00001-of-00002.safetensors';
    writeFileSync(path, JSON.stringify(index));
    throwsNaming(() => loadModelFolder(dir), path, "weight_map['model.ghost.weight']");
  });

  test('a folder without weights says which files it looked for', () => {
    const dir = copy('gpt2_lm');
    unlinkSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'pytorch_model.bin'), '');
    const e = throwsNaming(() => loadModelFolder(dir), dir, 'model.safetensors');
    assert.ok(e.details?.includes('pytorch_model.bin'), `${e.details}`);
  });

  test('saving refuses unmerged LoRA adapters and missing parameters', () => {
    const folder = loadModelFolder(fixtureDir('gpt2_lm'));
    const extra = new Map(folder.weights);
    extra.set('h.0.attn.c_attn.lora_A.weight', folder.weights.get('ln_f.bias')!);
    const e = throwsNaming(
      () => saveModelFolder(join(tmp, 'lora'), folder, extra),
      "'h.0.attn.c_attn.lora_A.weight'",
    );
    assert.ok(e.details?.includes('mergeLora'), `${e.details}`);
    const fewer = new Map(folder.weights);
    fewer.delete('wpe.weight');
    throwsNaming(() => saveModelFolder(join(tmp, 'fewer'), folder, fewer), "'wpe.weight'");
  });
});

describe('tokenizer and image placeholders', () => {
  test('a tokenizer.json that does not parse names the file and position', () => {
    const dir = copy('gpt2_lm');
    writeFileSync(join(dir, 'tokenizer.json'), '{"version": "1.0", "model": {"type": "WordLevel", ');
    throwsNaming(() => loadModelFolder(dir), join(dir, 'tokenizer.json'), 'not valid JSON');
  });

  test('a tokenizer.json with an invalid model names the key', () => {
    const dir = copy('gpt2_lm');
    const path = join(dir, 'tokenizer.json');
    const tok = JSON.parse(readFileSync(path, 'utf8'));
    tok.model.type = 'Bogus';
    writeFileSync(path, JSON.stringify(tok));
    throwsNaming(() => loadModelFolder(dir), path, 'model.type');
  });

  test('image placeholder counts other than 0 or one per feature are refused', () => {
    const ids = int64([2, 6], [5, 9, 9, 9, 1, 2, 9, 9, 3, 4, 5, 6]);
    throwsNaming(() => checkImagePlaceholders(ids, 9, 3), 'row 1', '2 image placeholder tokens', 'exactly 3');
    checkImagePlaceholders(int64([1, 4], [9, 9, 9, 1]), 9, 3);
    checkImagePlaceholders(int64([1, 4], [1, 2, 3, 4]), 9, 3);
  });
});

test('a LLaVA image_seq_length that disagrees with the vision tower is named', () => {
  const dir = copy('llava_gpt2_vit_linear');
  const path = editConfig(dir, (c) => {
    c.image_seq_length = 576;
  });
  throwsNaming(() => loadModelFolder(dir), path, 'image_seq_length 576', '17 image features');
});
