/**
 * Parity with PyTorch references written from Hugging Face's modeling files (test/fixtures/models/hf_reference.py):
 * every fixture folder is loaded through loadModelFolder (config.json + safetensors in HF layout) and its logits
 * and every hidden state must match to 1e-4 relative.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { assertMatchesFixture, expected, fixtureDir, runModel } from './helpers.ts';

const CASES: { name: string; kind: string; hidden: number }[] = [
  { name: 'gpt2_lm', kind: 'causal-lm', hidden: 3 },
  { name: 'gpt2_seqcls', kind: 'sequence-classifier', hidden: 3 },
  { name: 'llama_lm', kind: 'causal-lm', hidden: 3 },
  { name: 'llama_tied_headdim', kind: 'causal-lm', hidden: 3 },
  { name: 'qwen2_tied_f16', kind: 'causal-lm', hidden: 3 },
  { name: 'qwen2_untied', kind: 'causal-lm', hidden: 3 },
  { name: 'llama_seqcls', kind: 'sequence-classifier', hidden: 3 },
  { name: 'vit_cls', kind: 'image-classifier', hidden: 3 },
  { name: 'clip_vision', kind: 'vision-encoder', hidden: 3 },
  { name: 'clip_cls', kind: 'image-classifier', hidden: 3 },
  { name: 'llava_gpt2_vit_linear', kind: 'vlm', hidden: 3 },
  { name: 'llava_llama_clip_mlp', kind: 'vlm', hidden: 3 },
];

const errors: Record<string, string> = {};

describe('parity with the PyTorch reference (HF folders, 1e-4 relative)', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const folder = loadModelFolder(fixtureDir(c.name));
      assert.equal(folder.kind, c.kind);
      const ref = expected(c.name);
      const feeds: Record<string, import('../../src/engine/tensor.ts').HostTensor> = {};
      if (ref.has('ids')) feeds.input_ids = ref.get('ids')!;
      if (ref.has('attention_mask')) feeds.attention_mask = ref.get('attention_mask')!;
      if (ref.has('pixel_values')) feeds.pixel_values = ref.get('pixel_values')!;
      const out = await runModel(folder, folder.weights, feeds);
      const compared = [...ref.keys()].filter((k) => /^hidden\.\d+$/.test(k)).length;
      assert.equal(compared, c.hidden, 'every hidden state is in the fixture');
      errors[c.name] = assertMatchesFixture(out, ref, c.name).toExponential(2);
    });
  }
  test('report', () => {
    console.log(`max relative error per fixture: ${JSON.stringify(errors)}`);
  });
});
