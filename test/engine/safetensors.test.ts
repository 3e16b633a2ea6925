import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/dtype.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { ParameterStore } from '../../src/engine/runtime/param-store.ts';
import { type HostTensor, toFloat32, toHalf } from '../../src/engine/tensor.ts';

const dir = mkdtempSync(join(tmpdir(), 'tlab-st-'));

describe('float16 / bfloat16 conversions', () => {
  test('known float16 bit patterns', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -24, 0x0001],
      [2 ** -14, 0x0400],
      [0.333251953125, 0x3555],
      [Number.POSITIVE_INFINITY, 0x7c00],
      [1e6, 0x7c00],
    ];
    for (const [x, bits] of cases) {
      assert.equal(f32ToF16Bits(x), bits, `encode ${x}`);
      if (Number.isFinite(x) && x <= 65504)
        assert.equal(f16BitsToF32(bits), x, `decode ${bits.toString(16)}`);
    }
    assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(Number.NaN))));
    assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00, 'ties round to even');
    assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02, 'ties round to even (up)');
  });
  test('bfloat16 keeps the top 16 bits with round-to-nearest-even', () => {
    assert.equal(bf16BitsToF32(f32ToBf16Bits(1.00390625)), 1);
    assert.equal(bf16BitsToF32(f32ToBf16Bits(Math.PI)), 3.140625);
    assert.equal(bf16BitsToF32(f32ToBf16Bits(-0.5)), -0.5);
    assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(Number.NaN))));
  });
});

describe('safetensors', () => {
  test('round trip of every dtype, names sorted, header 8-byte aligned, metadata kept', () => {
    const tensors = new Map<string, HostTensor>([
      ['z.f32', { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
      ['a.f64', { dtype: 'float64', shape: [2], data: Float64Array.from([Math.PI, -1e-300]) }],
      ['m.i64', { dtype: 'int64', shape: [3], data: BigInt64Array.from([1n, -2n, 2n ** 40n]) }],
      ['b.bool', { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) }],
      ['h.f16', toHalf({ dtype: 'float32', shape: [2], data: Float32Array.from([0.5, -3]) }, 'float16')],
      ['k.bf16', toHalf({ dtype: 'float32', shape: [2], data: Float32Array.from([0.5, -3]) }, 'bfloat16')],
      ['empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const path = join(dir, 'all.safetensors');
    writeSafetensors(path, tensors, { format: 'pt' });
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLen) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString());
    assert.deepEqual(
      Object.keys(header).filter((k) => k !== '__metadata__'),
      [...tensors.keys()].sort(),
    );
    const back = readSafetensors(path);
    for (const [name, t] of tensors) {
      const u = back.get(name)!;
      assert.equal(u.dtype, t.dtype);
      assert.deepEqual(u.shape, t.shape);
      assert.deepEqual(
        Array.from(u.data as ArrayLike<number>),
        Array.from(t.data as ArrayLike<number>),
        name,
      );
    }
    assert.deepEqual(Array.from(toFloat32(back.get('h.f16')!).data as Float32Array), [0.5, -3]);
    assert.equal(readSafetensorsHeader(path).metadata.format, 'pt');
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp')),
      [],
      'no temp files left',
    );
  });

  test('reads a file written by the independent Python writer', () => {
    const t = readSafetensors('test/fixtures/engine/gpt2_step.safetensors', ['ids', 'param.wte.weight']);
    assert.deepEqual(t.get('ids')!.shape, [2, 16]);
    assert.equal(t.get('ids')!.dtype, 'int64');
    assert.deepEqual(t.get('param.wte.weight')!.shape, [96, 64]);
    assert.equal(t.get('param.wte.weight')!.dtype, 'float64');
  });

  const good = () => {
    const path = join(dir, 'good.safetensors');
    writeSafetensors(path, { w: { dtype: 'float32', shape: [4], data: new Float32Array(4) } });
    return readFileSync(path);
  };
  const bad: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['truncated data', (b) => b.subarray(0, b.length - 3), /'w' ends at byte 16 .*\(truncated\?\)/],
    ['truncated header', (b) => b.subarray(0, 20), /runs past the end of the 20-byte file \(truncated\?\)/],
    ['shorter than 8 bytes', (b) => b.subarray(0, 5), /shorter than the 8-byte header length/],
    [
      'header not JSON',
      (b) =>
        Buffer.concat([
          b.subarray(0, 8),
          Buffer.from('{"w": [1,'.padEnd(Number(b.readBigUInt64LE(0)), ' ')),
          b.subarray(8 + Number(b.readBigUInt64LE(0))),
        ]),
      /header is not JSON/,
    ],
    [
      'unknown dtype',
      (b) => Buffer.from(b.toString('latin1').replace('"F32"', '"Q32"'), 'latin1'),
      /dtype Q32; supported: F64, F32/,
    ],
    [
      'offsets disagree with the shape',
      (b) => Buffer.from(b.toString('latin1').replace('[4]', '[5]'), 'latin1'),
      /needs 20 bytes but data_offsets span 16/,
    ],
  ];
  for (const [name, corrupt, message] of bad) {
    test(`a corrupt file (${name}) gives one line naming the file`, () => {
      const path = join(dir, `${name.replace(/\W/g, '_')}.safetensors`);
      writeFileSync(path, corrupt(good()));
      assert.throws(
        () => readSafetensors(path),
        (e: Error) => {
          assert.match(e.message, message);
          assert.ok(e.message.startsWith(path), e.message);
          assert.ok(!e.message.includes('\n'));
          return true;
        },
      );
    });
  }

  test('a missing tensor lists the ones present; a missing parameter names the store', () => {
    const path = join(dir, 'good.safetensors');
    assert.throws(() => readSafetensors(path, ['nope']), /no tensor named 'nope'/);
    const store = new ParameterStore(readSafetensors(path));
    assert.throws(
      () => store.get('h.0.attn.c_attn.weight'),
      /parameter 'h.0.attn.c_attn.weight' is missing from the parameter store/,
    );
    assert.throws(
      () => readSafetensors(join(dir, 'absent.safetensors')),
      /cannot open safetensors file \(ENOENT\)/,
    );
  });
});
