/**
 * Sessions for models whose weights exceed a protobuf (createModelSession): the model and page-aligned external
 * data go through a temporary folder, and the program computes what the inline one does (forced here with a
 * limit of 0 bytes; the real limit is 1.5 GiB).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import { lowerGraph } from '../../src/engine/onnx/lower.ts';
import * as T from '../../src/engine/ops/index.ts';
import { toOrtTensor } from '../../src/engine/runtime/ort-tensor.ts';
import { createModelSession, Program, wrapModel } from '../../src/engine/runtime/session.ts';
import { randn } from './helpers.ts';

test('weights as external data give the same outputs, and the temporary folder is removed', async () => {
  const w = randn([64, 48], 1, 'float32');
  const x = randn([3, 64], 2, 'float32');
  const graph = new Graph();
  const xin = graph.input('x', 'float32', x.shape);
  const win = graph.input('w', 'float32', w.shape);
  const y = T.matmul(xin, win);
  const inline = await Program.compile(graph, { outputs: { y }, bind: new Map([['w', w]]) });
  const want = (await inline.run({ x })).y.data as Float32Array;
  await inline.release();
  const before = readdirSync(tmpdir()).filter((f) => f.startsWith('tlab-model-')).length;
  const model = wrapModel(lowerGraph(graph, { outputs: { y }, bind: new Map([['w', w]]) }));
  const session = await createModelSession(model, {}, 0);
  try {
    const got = (await session.run({ x: toOrtTensor('x', x) })).y.data as Float32Array;
    assert.deepEqual(Array.from(got), Array.from(want));
  } finally {
    await session.release();
  }
  const after = readdirSync(tmpdir()).filter((f) => f.startsWith('tlab-model-')).length;
  assert.equal(after, before, 'the temporary model folder is gone');
});
