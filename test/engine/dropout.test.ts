import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../../src/engine/autodiff/grad.ts';
import { Graph } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { dropoutKey, dropoutMaskReference } from '../../src/engine/ops/random.ts';
import { Program } from '../../src/engine/runtime/session.ts';

const N = 4096;
const key = (k: [number, number]) => ({
  dtype: 'int64' as const,
  shape: [2],
  data: BigInt64Array.from(k.map(BigInt)),
});

async function masks(p: number) {
  const g = new Graph();
  const k = g.input('key', 'int64', [2]);
  const x = g.input('x', 'float32', [N]);
  const a = T.dropout(x, p, k);
  const b = T.dropout(x, p, k);
  const [dx] = grad(T.reduceSum(a), [x]);
  return Program.compile(g, { outputs: { a, b, dx } });
}

test('dropout masks are the documented hash of (index, key, site), reproducible from the seed', async () => {
  const p = 0.25;
  const program = await masks(p);
  const ones = { dtype: 'float32' as const, shape: [N], data: new Float32Array(N).fill(1) };
  const k = dropoutKey(42, 7);
  const r1 = await program.run({ key: key(k), x: ones });
  const r2 = await program.run({ key: key(k), x: ones });
  const kept = (t: Float32Array): number[] => Array.from(t, (v) => (v !== 0 ? 1 : 0));
  const a = r1.a.data as Float32Array;
  assert.deepEqual(
    kept(a),
    Array.from(dropoutMaskReference(N, k[0], k[1], p, 0)),
    'site 0 mask equals the JS reference',
  );
  assert.deepEqual(
    kept(r1.b.data as Float32Array),
    Array.from(dropoutMaskReference(N, k[0], k[1], p, 1)),
    'site 1',
  );
  assert.deepEqual(Array.from(a), Array.from(r2.a.data as Float32Array), 'same key, same mask');
  for (const v of a)
    assert.ok(v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6, 'kept values are scaled by 1/(1-p)');
  // Backward uses the forward's mask.
  assert.deepEqual(Array.from(r1.dx.data as Float32Array), Array.from(a));
  const rate = kept(a).reduce((s, v) => s + v, 0) / N;
  assert.ok(Math.abs(rate - (1 - p)) < 0.03, `keep rate ${rate}`);
  // Two sites and two steps are practically uncorrelated.
  const corr = (u: number[], v: number[]) => {
    const mu = u.reduce((s, x) => s + x, 0) / N;
    const mv = v.reduce((s, x) => s + x, 0) / N;
    let c = 0;
    let su = 0;
    let sv = 0;
    for (let i = 0; i < N; i++) {
      c += (u[i] - mu) * (v[i] - mv);
      su += (u[i] - mu) ** 2;
      sv += (v[i] - mv) ** 2;
    }
    return c / Math.sqrt(su * sv);
  };
  const other = await program.run({ key: key(dropoutKey(42, 8)), x: ones });
  assert.ok(Math.abs(corr(kept(a), kept(r1.b.data as Float32Array))) < 0.06, 'sites independent');
  assert.ok(Math.abs(corr(kept(a), kept(other.a.data as Float32Array))) < 0.06, 'steps independent');
  assert.notDeepEqual(kept(a), kept(other.a.data as Float32Array));
  await program.release();
});

test('a key with a micro-batch index m masks element i as element m·numel + i of the whole batch', async () => {
  const rows = 8;
  const cols = 16;
  const p = 0.5;
  const g = new Graph();
  const k3 = g.input('key', 'int64', [3]);
  const whole = g.input('whole', 'int64', [3]);
  const part = T.dropoutMask(k3, [rows, cols], p, 0);
  const all = T.dropoutMask(whole, [4 * rows, cols], p, 0);
  const program = await Program.compile(g, {
    outputs: { part: T.cast(part, 'float32'), all: T.cast(all, 'float32') },
  });
  const [k1, k2] = dropoutKey(5, 9);
  const feed = (m: number) => ({
    dtype: 'int64' as const,
    shape: [3],
    data: BigInt64Array.of(BigInt(k1), BigInt(k2), BigInt(m)),
  });
  const full = Array.from((await program.run({ key: feed(0), whole: feed(0) })).all.data as Float32Array);
  for (let m = 0; m < 4; m++) {
    const got = Array.from((await program.run({ key: feed(m), whole: feed(0) })).part.data as Float32Array);
    assert.deepEqual(
      got,
      Array.from(dropoutMaskReference(rows * cols, k1, k2, p, 0, m * rows * cols)),
      `reference, m=${m}`,
    );
    assert.deepEqual(
      got,
      full.slice(m * rows * cols, (m + 1) * rows * cols),
      `rows of micro-batch ${m} in the whole batch`,
    );
  }
  await program.release();
});
