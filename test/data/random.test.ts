import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashSeed, Rng } from '../../src/util/random.ts';

test('Rng: same seed, same stream; different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xs = Array.from({ length: 5 }, () => a.nextUint32());
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.nextUint32()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 5 }, () => c.nextUint32()),
  );
  assert.equal(new Rng('task').next(), new Rng('task').next());
});

test('Rng: known values stay fixed (built datasets depend on them)', () => {
  const r = new Rng(1);
  assert.deepEqual([r.nextUint32(), r.nextUint32(), r.nextUint32()], [2442144158, 3238099751, 3819917871]);
  assert.equal(new Rng('abc').int(1000), 994);
  assert.equal(Rng.at(0, 'x', 1).next(), 0.36185340282588596);
});

test('Rng: int is in range and roughly uniform; next in [0, 1)', () => {
  const r = new Rng(7);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 20000; i++) counts[r.int(10)]++;
  for (const c of counts) assert.ok(c > 1800 && c < 2200, `bucket count ${c}`);
  for (let i = 0; i < 1000; i++) {
    const v = r.next();
    assert.ok(v >= 0 && v < 1);
  }
});

test('Rng.sampleIndices draws distinct values in range (both algorithms)', () => {
  const r = new Rng(3);
  for (const [n, k] of [
    [1000, 10],
    [10, 9],
    [5, 5],
    [5, 0],
  ]) {
    const s = r.sampleIndices(n, k);
    assert.equal(s.length, k);
    assert.equal(new Set(s).size, k);
    assert.ok(s.every((v) => v >= 0 && v < n));
  }
  assert.throws(() => r.sampleIndices(3, 4), RangeError);
});

test('Rng.at and fork give independent, reproducible streams', () => {
  assert.equal(Rng.at(5, 'train', 3).nextUint32(), Rng.at(5, 'train', 3).nextUint32());
  assert.notEqual(Rng.at(5, 'train', 3).nextUint32(), Rng.at(5, 'train', 4).nextUint32());
  assert.notEqual(hashSeed(1, 'a', 'b'), hashSeed(1, 'b', 'a'));
  const r = new Rng(9);
  const before = new Rng(9).nextUint32();
  r.fork('x');
  assert.equal(r.nextUint32(), before, 'fork does not advance the parent');
});
