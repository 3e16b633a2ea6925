/** ONNX export: the file onnxruntime loads from disk (inline weights or external data) gives the same logits. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import ort from 'onnxruntime-node';
import { decodeModel } from '../../src/engine/onnx/decode.ts';
import { fromOrtTensor, toOrtTensor } from '../../src/engine/runtime/ort-tensor.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { exportOnnx } from '../../src/models/onnx-export.ts';
import { assertClose, expected, fixtureDir, onesMask } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tlab-onnx-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function runFile(path: string, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  try {
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrtTensor(k, v)]));
    const out = await session.run(inputs);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, fromOrtTensor(k, v)]));
  } finally {
    await session.release();
  }
}

test('GPT-2 exports with inline weights; onnxruntime loads model.onnx from disk and reproduces the logits', async () => {
  const folder = loadModelFolder(fixtureDir('gpt2_lm'));
  const ref = expected('gpt2_lm');
  const ids = ref.get('ids')!;
  const dir = join(tmp, 'gpt2');
  const result = exportOnnx(dir, folder, folder.weights, { batch: 2, seqLength: 12 });
  assert.equal(result.dataPath, null);
  assert.deepEqual(result.inputs, ['input_ids', 'attention_mask']);
  const out = await runFile(result.modelPath, { input_ids: ids, attention_mask: ref.get('attention_mask')! });
  assertClose(out.logits, ref.get('logits')!, 'exported gpt2 logits');
  const model = decodeModel(readFileSync(result.modelPath));
  assert.equal(model.metadata?.model_type, 'gpt2');
  assert.ok(
    model.graph.initializers.some((t) => t.name === 'h.0.attn.c_attn.weight' && t.raw),
    "model.graph.initializers.some((t) => t.name === 'h.0.attn.c_attn.weight' && t.raw)",
  );
});

test('LLaVA exports with external data (model.onnx_data) and hidden states; logits match from disk', async () => {
  const folder = loadModelFolder(fixtureDir('llava_llama_clip_mlp'));
  const ref = expected('llava_llama_clip_mlp');
  const ids = ref.get('ids')!;
  const dir = join(tmp, 'llava');
  const result = exportOnnx(dir, folder, folder.weights, {
    batch: 2,
    seqLength: ids.shape[1],
    hiddenStates: true,
    externalDataThreshold: 0,
  });
  assert.ok(result.dataPath && existsSync(result.dataPath), 'result.dataPath && existsSync(result.dataPath)');
  const model = decodeModel(readFileSync(result.modelPath));
  const ext = model.graph.initializers.filter((t) => t.external);
  assert.ok(
    ext.length > 10 &&
      ext.every((t) => t.external!.location === 'model.onnx_data' && t.external!.offset % 4096 === 0),
    "ext.length > 10 && ext.every((t) => t.external!.location === 'model.onnx_data' && t.e...",
  );
  const out = await runFile(result.modelPath, {
    input_ids: ids,
    attention_mask: onesMask(ids),
    pixel_values: ref.get('pixel_values')!,
  });
  assertClose(out.logits, ref.get('logits')!, 'exported llava logits');
  assertClose(out['hidden_states.1'], ref.get('hidden.1')!, 'exported llava hidden state 1');
});

test('a vision encoder exports last_hidden_state and pooler_output', async () => {
  const folder = loadModelFolder(fixtureDir('clip_vision'));
  const ref = expected('clip_vision');
  const result = exportOnnx(join(tmp, 'clip'), folder, folder.weights, { batch: 2 });
  const out = await runFile(result.modelPath, { pixel_values: ref.get('pixel_values')! });
  assertClose(out.last_hidden_state, ref.get('last_hidden')!, 'exported clip last_hidden_state');
  assertClose(out.pooler_output, ref.get('pooled')!, 'exported clip pooler_output');
});
