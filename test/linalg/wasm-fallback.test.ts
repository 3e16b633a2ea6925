import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setKernelSource, withKernels } from '../../src/linalg/wasm.ts';

test('kernels that fail to compile fall back to JS after one warning naming the cause', async () => {
  const warnings: Error[] = [];
  const listen = (w: Error) => {
    if ((w as Error & { code?: string }).code === 'TLAB_WASM_FALLBACK') warnings.push(w);
  };
  process.on('warning', listen);
  try {
    setKernelSource('(module (func $broken (result i32) (i32.nonsense)))');
    assert.equal(await withKernels(1024, (k) => k), null, 'no kernels: callers take their JS loops');
    assert.equal(await withKernels(1024, (k) => k), null);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    assert.equal(warnings.length, 1, 'warned once');
    assert.match(
      warnings[0].message,
      /^linalg: the WebAssembly kernels could not be compiled \(.*nonsense.*\); using the slower JS loops/,
    );
  } finally {
    setKernelSource(null);
    process.off('warning', listen);
  }
  assert.notEqual(await withKernels(1024, (k) => k), null, 'the real kernels compile again');
  await new Promise((r) => setImmediate(r));
  assert.equal(warnings.length, 1);
});
