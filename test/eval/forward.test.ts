import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ForwardRunner } from '../../src/eval/forward.ts';
import { tinyModel } from './helpers.ts';
import { maxAbsDiff, referenceForward } from './reference.ts';

const { model, weights } = tinyModel(3);
const runner = new ForwardRunner(model, weights);
after(() => runner.release());
const rows = [
  [5, 9, 2, 14, 7, 7, 30],
  [3, 1],
  [12, 4, 8, 19, 21, 6, 2, 2, 9, 10, 11, 17, 23, 5, 5, 6, 1, 8],
];
const V = model.vocabSize;
const D = model.hiddenSize;

test('logits, hidden states and last-token logits of a right-padded batch match unpadded single-row passes', async () => {
  const out = await runner.run({ ids: rows }, { logits: true, lastLogits: true, hiddenStates: true });
  assert.equal(out.length, 32, 'lengths are bucketed to multiples of 16');
  assert.deepEqual(out.lengths, [7, 2, 18]);
  assert.equal(out.hiddenStates!.size, model.numLayers + 1);
  const logits = out.logits!.data as Float32Array;
  for (const [r, ids] of rows.entries()) {
    const ref = await referenceForward(model, weights, ids);
    for (let t = 0; t < ids.length; t++) {
      const at = (r * out.length + t) * V;
      assert.ok(maxAbsDiff(logits.subarray(at, at + V), ref.logits[t]) < 1e-4, `row ${r} position ${t}`);
      for (const [l, h] of out.hiddenStates!) {
        const hd = h.data as Float32Array;
        const off = (r * out.length + t) * D;
        assert.ok(maxAbsDiff(hd.subarray(off, off + D), ref.hidden[l][t]) < 1e-4, `row ${r} layer ${l}`);
      }
    }
    const last = (out.lastLogits!.data as Float32Array).subarray(r * V, (r + 1) * V);
    assert.ok(maxAbsDiff(last, ref.logits[ids.length - 1]) < 1e-4, `row ${r} last logits`);
  }
});

test('pooled features: last token, mean over real tokens and first token, for any layer', async () => {
  const out = await runner.run({ ids: rows }, { pooled: ['last', 'mean', 'first'], poolLayers: [0, -1] });
  assert.deepEqual([...out.pooled!.get('mean')!.keys()], [0, model.numLayers]);
  for (const [r, ids] of rows.entries()) {
    const ref = await referenceForward(model, weights, ids);
    for (const l of [0, model.numLayers]) {
      const h = ref.hidden[l];
      const mean = new Float64Array(D);
      for (const v of h) for (let j = 0; j < D; j++) mean[j] += v[j] / h.length;
      const expected = { last: h[h.length - 1], first: h[0], mean };
      for (const mode of ['last', 'mean', 'first'] as const) {
        const got = (out.pooled!.get(mode)!.get(l)!.data as Float32Array).subarray(r * D, (r + 1) * D);
        assert.ok(maxAbsDiff(got, expected[mode]) < 1e-4, `row ${r} layer ${l} ${mode}`);
      }
    }
  }
  // features(): the same vectors, batch by batch, in input order.
  const feats = await runner.features(rows, { pooling: ['mean'], layers: [-1], batchSize: 2 });
  const all = feats.get('mean')!.get(model.numLayers)!;
  assert.deepEqual(all.shape, [3, D]);
  assert.ok(
    maxAbsDiff(
      all.data as Float32Array,
      out.pooled!.get('mean')!.get(model.numLayers)!.data as Float32Array,
    ) < 1e-5,
  );
});

test('programs are compiled once per shape and request', async () => {
  const before = runner.programs.size;
  await runner.run({ ids: rows }, { lastLogits: true });
  await runner.run({ ids: rows.map((r) => r.slice(0, 1)) }, { lastLogits: true });
  await runner.run({ ids: rows }, { lastLogits: true });
  assert.equal(runner.programs.size, before + 2);
  await assert.rejects(
    runner.run({ ids: [[1]] }, { hiddenStates: [7] }),
    /layer 7 is out of range; valid: 0\.\.2/,
  );
  await assert.rejects(runner.run({ ids: [[]] }, { lastLogits: true }), /sequence 0 is empty/);
});
