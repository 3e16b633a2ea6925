import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { Graph } from '../../src/engine/ir/graph.ts';
import { decodeModel } from '../../src/engine/onnx/decode.ts';
import { encodeModel } from '../../src/engine/onnx/encode.ts';
import { lowerGraph } from '../../src/engine/onnx/lower.ts';
import * as T from '../../src/engine/ops/index.ts';
import { createSession, wrapModel } from '../../src/engine/runtime/session.ts';
import { type Gpt2Config, gpt2Forward } from '../../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../../src/nn/module.ts';

const config: Gpt2Config = {
  model_type: 'gpt2',
  vocab_size: 50,
  n_positions: 16,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
};

test('encoded models decode to the same structure, re-encode byte-identically and run in onnxruntime', async () => {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const ids = graph.input('ids', 'int64', [1, 8]);
  const out = gpt2Forward(pb, config, ids);
  const weights = initParams(pb.specs.values(), 3);
  const onnx = lowerGraph(graph, {
    outputs: { logits: out.logits, probs: T.softmax(out.logits) },
    bind: weights,
  });
  const bytes = encodeModel(wrapModel(onnx, { source: 'test' }));
  const decoded = decodeModel(bytes);
  assert.equal(decoded.irVersion, 10);
  assert.deepEqual(decoded.opsets, [{ domain: '', version: 21 }]);
  assert.deepEqual(decoded.metadata, { source: 'test' });
  assert.deepEqual(
    decoded.graph.nodes.map((n) => n.opType),
    onnx.nodes.map((n) => n.opType),
  );
  assert.deepEqual(decoded.graph.inputs, [{ name: 'ids', dtype: 'int64', shape: [1, 8] }]);
  assert.deepEqual(
    decoded.graph.outputs.map((o) => o.name),
    ['logits', 'probs'],
  );
  const inits = new Map(decoded.graph.initializers.map((t) => [t.name, t]));
  for (const [name, t] of weights) {
    const d = inits.get(name)!;
    assert.deepEqual(d.dims, t.shape);
    assert.deepEqual(
      Buffer.from(d.raw!),
      Buffer.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
      name,
    );
  }
  assert.deepEqual(
    Buffer.from(encodeModel(decoded)),
    Buffer.from(bytes),
    'decode then encode is the identity',
  );
  const session = await createSession(bytes);
  const r = await session.run({
    ids: new ort.Tensor('int64', BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]), [1, 8]),
  });
  const probs = r.probs.data as Float32Array;
  let rowSum = 0;
  for (let i = 0; i < config.vocab_size; i++) rowSum += probs[i];
  assert.ok(Math.abs(rowSum - 1) < 1e-5);
});

test('a corrupt ONNX file is a clear error', () => {
  assert.throws(
    () => decodeModel(Uint8Array.from([0x0a, 0xff, 0xff, 0xff]), 'broken.onnx'),
    /TlabError: broken.onnx: not a valid ONNX model \(premature EOF\)/,
  );
});
