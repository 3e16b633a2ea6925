import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';

test('tlab export writes an ONNX graph that onnxruntime loads from disk; a missing folder is one clear line', async () => {
  const out = mkdtempSync(join(tmpdir(), 'tlab-export-'));
  const r = spawnSync(
    process.execPath,
    [
      'bin/tlab.js',
      'export',
      'test/fixtures/models/gpt2_lm',
      '--out',
      out,
      '--static',
      '--seq-len',
      '8',
      '--json',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(result.inputs, ['input_ids', 'attention_mask']);
  const session = await ort.InferenceSession.create(result.modelPath);
  const ids = new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i + 1)),
    [1, 8],
  );
  const mask = new ort.Tensor('int64', new BigInt64Array(8).fill(1n), [1, 8]);
  const logits = (await session.run({ input_ids: ids, attention_mask: mask })).logits;
  assert.equal(logits.dims.length, 3);
  assert.ok((logits.data as Float32Array).every(Number.isFinite));
  const bad = spawnSync(process.execPath, ['bin/tlab.js', 'export', 'no/such/model', '--out', out], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.split('\n')[0], /^error: no\/such\/model: model folder not found$/);
});
