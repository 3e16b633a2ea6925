/**
 * 4-bit weights: the host quantizers against an independent reference of bitsandbytes' NF4 (with double
 * quantization) and of the int4 scheme (test/fixtures/nn/make_nf4.py); the graph's dequantization and the fused
 * onnxruntime products (MatMulNBits, MatMulBnb4) against the host dequantization; the backward rule against float64
 * finite differences and against dy · W; that onnxruntime keeps the weight 4-bit (no float initializer is folded
 * in); and a quantized Linear inside a model with LoRA on top.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { grad } from '../../src/engine/autodiff/grad.ts';
import { gradcheck } from '../../src/engine/autodiff/gradcheck.ts';
import { readSafetensors } from '../../src/engine/io/safetensors.ts';
import { Graph, type Value } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { linear } from '../../src/nn/layers.ts';
import { ParamBuilder } from '../../src/nn/module.ts';
import {
  DYNAMIC_MAP,
  dequantize4BitHost,
  dequantizeModule,
  type QuantModule,
  quantizeInt4,
  quantizeModule,
  quantizeModules,
  quantizeNf4,
} from '../../src/nn/quant.ts';
import { maxRelDiff, randn } from '../engine/helpers.ts';

const ref = readSafetensors('test/fixtures/nn/nf4.safetensors');
const get = (k: string) => ref.get(k)!.data as Float32Array | Uint8Array;
const weight = get('weight') as Float32Array;
const [ROWS, COLS] = ref.get('weight')!.shape;

function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

async function run(
  build: (graph: Graph) => Record<string, Value>,
  feeds: Record<string, HostTensor> = {},
  options: { optimizedModelPath?: string } = {},
): Promise<Record<string, HostTensor>> {
  const graph = new Graph();
  const outputs = build(graph);
  const program = await Program.compile(graph, { outputs, ...options });
  try {
    return await program.run(feeds);
  } finally {
    await program.release();
  }
}

const u8 = (shape: number[], data: Uint8Array): HostTensor => ({ dtype: 'uint8', shape, data });
const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

describe('4-bit quantization (vs an independent reference of bitsandbytes NF4 and int4)', () => {
  test("the dynamic map is bitsandbytes' create_dynamic_map(signed=True), to the last bit of float32", () => {
    // torch's float32 linspace vectorizes (its last bit depends on the CPU's vector width), so 1 ulp is allowed.
    assert.equal(DYNAMIC_MAP.length, 256);
    assert.ok(maxRelDiff(DYNAMIC_MAP, get('dynamic_map') as Float32Array) < 1.2e-7);
    assert.ok(
      DYNAMIC_MAP.every((v, i) => i === 0 || v >= DYNAMIC_MAP[i - 1]),
      'sorted',
    );
  });

  test('nf4: the same codes and absmax, the same dequantized weight, the same error', () => {
    const q = quantizeNf4(weight, 64);
    assert.equal(mismatches(q.codes, get('nf4.codes')), 0, 'packed codes');
    assert.equal(mismatches(q.absmax, get('nf4.absmax')), 0, 'absmax');
    const deq = dequantize4BitHost('nf4', q.codes, q.absmax, 64);
    assert.ok(maxRelDiff(deq, get('nf4.dequantized') as Float32Array) < 1e-7);
    // The quantization error of NF4 on N(0, 0.05²) weights: below half the largest level gap times absmax.
    let err = 0;
    for (let i = 0; i < weight.length; i++) err += Math.abs(deq[i] - weight[i]);
    assert.ok(err / weight.length < 0.004, `mean |error| ${err / weight.length}`);
  });

  test('nf4 with double quantization: 8-bit absmax codes, block scales and offset as the reference', () => {
    const q = quantizeNf4(weight, 64, true);
    assert.ok(q.double);
    assert.equal(mismatches(q.double.codes, get('double.codes')), 0, '8-bit absmax codes');
    assert.equal(mismatches(q.double.absmax, get('double.absmax')), 0, 'per-256 absmax');
    assert.equal(q.double.offset, (get('double.offset') as Float32Array)[0]);
    assert.ok(maxRelDiff(q.absmax, get('double.absmax_dequantized') as Float32Array) < 1e-6);
    const deq = dequantize4BitHost('nf4', q.codes, q.absmax, 64);
    assert.ok(maxRelDiff(deq, get('double.dequantized') as Float32Array) < 1e-6);
  });

  test('int4: the same codes, scales and dequantized weight', () => {
    const q = quantizeInt4(weight, ROWS, COLS, 64);
    assert.equal(mismatches(q.codes, get('int4.codes')), 0);
    assert.equal(mismatches(q.scales, get('int4.scales')), 0);
    const deq = dequantize4BitHost('int4', q.codes, q.scales, 64);
    assert.ok(maxRelDiff(deq, get('int4.dequantized') as Float32Array) < 1e-7);
  });

  for (const [format, doubleQuant] of [
    ['nf4', false],
    ['nf4', true],
    ['int4', false],
  ] as const) {
    const m: QuantModule = {
      path: 'proj',
      rows: ROWS,
      cols: COLS,
      format,
      blockSize: 64,
      doubleQuant,
      init: { kind: 'zeros' },
    };
    const name = `${format}${doubleQuant ? ' + double quant' : ''}`;

    test(`${name}: the graph's dequantization and fused product equal the host dequantization`, async () => {
      const params = quantizeModule(m, weight);
      const w = dequantizeModule(m, params).data as Float32Array;
      const x = randn([3, 5, COLS], 4, 'float32');
      const out = await run(
        (graph) => {
          const pb = new ParamBuilder(graph, 'float32', null, undefined, { format, doubleQuant });
          const xin = graph.input('x', 'float32', x.shape);
          const y = pb.scope('proj', () => linear(pb, '', xin, COLS, ROWS, { bias: false }));
          const y2 = pb.scope('proj2', () =>
            T.matmul(xin, T.transpose(graph.constant(f32([ROWS, COLS], w)), [1, 0])),
          );
          return { y, ref: y2 };
        },
        { x, ...Object.fromEntries(params) },
      );
      assert.ok(maxRelDiff(out.y.data as Float32Array, out.ref.data as Float32Array) < 1e-5, 'fused = x·Wᵀ');
    });
  }

  test('the backward rule: float64 finite differences, and dx = dy · W in float32 through the fused op', async () => {
    const m = { format: 'int4' as const, rows: 8, cols: 32, blockSize: 16 };
    const w = randn([8, 32], 9, 'float32').data as Float32Array;
    const q = quantizeInt4(w, 8, 32, 16);
    const codes = u8([8, 2, 8], q.codes);
    const scales = f32([8, 2], q.scales);
    const report = await gradcheck(
      (inputs) => T.matmul4Bit(inputs[0], inputs[1], inputs[2], m),
      [randn([3, 32], 2)],
      {
        constants: [codes, scales],
      },
    );
    report.relErrors.forEach((e) => {
      assert.ok(e < 1e-6, `relative error ${e}`);
    });
    for (const format of ['int4', 'nf4'] as const) {
      const qq =
        format === 'int4'
          ? q
          : (() => {
              const n = quantizeNf4(w, 16);
              return { codes: n.codes, scales: n.absmax };
            })();
      const p = { ...m, format };
      const wd = dequantize4BitHost(format, qq.codes, qq.scales, 16);
      const dy = randn([3, 8], 5, 'float32');
      const out = await run(
        (graph) => {
          const x = graph.input('x', 'float32', [3, 32]);
          const c = graph.constant(format === 'int4' ? codes : u8([128], qq.codes));
          const s = graph.constant(format === 'int4' ? scales : f32([16, 1], qq.scales));
          const y = T.matmul4Bit(x, c, s, p);
          const loss = T.reduceSum(T.mul(y, graph.constant(dy)));
          const [gx] = grad(loss, [x]);
          return { gx, ref: T.matmul(graph.constant(dy), graph.constant(f32([8, 32], wd))) };
        },
        { x: randn([3, 32], 6, 'float32') },
      );
      assert.ok(maxRelDiff(out.gx.data as Float32Array, out.ref.data as Float32Array) < 1e-6, `${format} dx`);
    }
  });

  test('onnxruntime keeps the weight 4-bit: no float copy of it is folded into the session', async () => {
    const m: QuantModule = {
      path: 'proj',
      rows: ROWS,
      cols: COLS,
      format: 'nf4',
      blockSize: 64,
      doubleQuant: false,
      init: { kind: 'zeros' },
    };
    const params = quantizeModule(m, weight);
    const dir = mkdtempSync(join(tmpdir(), 'tlab-quant-'));
    try {
      const path = join(dir, 'optimized.onnx');
      const graph = new Graph();
      const pb = new ParamBuilder(graph, 'float32', null, undefined, { format: 'nf4' });
      const x = graph.input('x', 'float32', [4, COLS]);
      const y = pb.scope('proj', () => linear(pb, '', x, COLS, ROWS, { bias: false }));
      const [gx] = grad(T.reduceSum(T.mul(y, y)), [x]);
      const program = await Program.compile(graph, {
        outputs: { y, gx },
        bind: params,
        optimizedModelPath: path,
      });
      await program.release();
      const model = fromBinary(ModelProtoSchema, readFileSync(path));
      const floats = model.graph!.initializer.filter(
        (t) => t.dataType === 1 && t.rawData.length >= ROWS * COLS * 4,
      );
      assert.deepEqual(
        floats.map((t) => t.name),
        [],
        'a float weight-sized initializer means the dequantization was constant-folded',
      );
      const ops = model.graph!.node.map((n) => n.opType);
      assert.ok(ops.includes('MatMulBnb4'), 'the forward product is the fused kernel');
      assert.ok(ops.includes('DequantizeLinear'), 'the backward dequantizes in the graph');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a model trained from scratch: modules quantized from their seeded initialisation, one at a time', () => {
    const m: QuantModule = {
      path: 'a.b',
      rows: 16,
      cols: 64,
      format: 'int4',
      blockSize: 64,
      doubleQuant: false,
      init: { kind: 'normal', std: 0.02 },
    };
    const first = quantizeModules([m], () => undefined, 3);
    const again = quantizeModules([m], () => undefined, 3);
    assert.deepEqual(first.get('a.b.weight.q4')!.data, again.get('a.b.weight.q4')!.data, 'seeded');
    const other = quantizeModules([m], () => undefined, 4);
    assert.notDeepEqual(first.get('a.b.weight.q4')!.data, other.get('a.b.weight.q4')!.data);
    assert.deepEqual([...first.keys()].sort(), ['a.b.weight.absmax', 'a.b.weight.q4']);
  });
});
