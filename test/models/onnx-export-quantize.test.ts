/**
 * Weight variants: onnxruntime's MatMulNBits (4-bit) and DequantizeLinear (int8/uint8) read the packed weights
 * as the exporter meant them: their products stay within the rounding bound Σ_k |x_k| · scale/2 of the float
 * product computed here in float64 (an error in the packing layout breaks the bound by orders of magnitude);
 * and every variant file of a tiny GPT-2 loads in transformers.js under its dtype name and generates.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AutoModelForCausalLM, env, type Tensor } from '@huggingface/transformers';
import ort from 'onnxruntime-node';
import { OnnxBuilder } from '../../src/models/onnx-export-builder.ts';
import { writeOnnxFile } from '../../src/models/onnx-export-file.ts';
import { exportPortableFolder } from '../../src/models/onnx-export-folder.ts';
import { quantize4, quantize8, weightVariant } from '../../src/models/onnx-export-quantize.ts';
import { Rng } from '../../src/util/random.ts';
import { tinyFolder } from './export-helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tlab-quant-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const K = 72; // not a multiple of the 32-row block: the last block is padded
const N = 6;
const ROWS = 3;

function randomMatrix(seed: number, n: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * (1 + rng.next()));
}

/** Runs x [ROWS, K] @ w [K, N] through the variant's graph in onnxruntime. */
async function product(
  variant: 'q4' | 'int8' | 'uint8',
  w: Float32Array,
  x: Float32Array,
): Promise<Float32Array> {
  const b = new OnnxBuilder('matmul');
  const input = b.input('x', 'float32', ['rows', K]);
  const y = b.matmul(input, b.tensor('w', { dtype: 'float32', shape: [K, N], data: w }));
  b.output('y', y, 'float32', ['rows', N]);
  const path = join(tmp, `${variant}.onnx`);
  const graph = weightVariant(b.build(), variant);
  assert.ok(
    graph.nodes.some((n) => n.opType === (variant === 'q4' ? 'MatMulNBits' : 'DequantizeLinear')),
    `the ${variant} graph quantizes the weight`,
  );
  writeOnnxFile(path, graph);
  const session = await ort.InferenceSession.create(path);
  try {
    return (await session.run({ x: new ort.Tensor('float32', x, [ROWS, K]) })).y.data as Float32Array;
  } finally {
    await session.release();
  }
}

for (const variant of ['q4', 'int8', 'uint8'] as const) {
  test(`${variant}: onnxruntime's product is within the rounding bound of the float64 product`, async () => {
    const w = randomMatrix(1, K * N);
    const x = randomMatrix(2, ROWS * K);
    const got = await product(variant, w, x);
    // Scale of weight (k, n): per 32-row block for q4, per column for 8 bits.
    let scaleOf: (k: number, n: number) => number;
    if (variant === 'q4') {
      const q = quantize4(w, K, N, 32);
      scaleOf = (k, n) => q.scales[n * q.blocks + Math.floor(k / 32)];
    } else {
      const q = quantize8(w, K, N, variant);
      scaleOf = (_k, n) => q.scales[n];
    }
    let worst = 0;
    for (let r = 0; r < ROWS; r++)
      for (let n = 0; n < N; n++) {
        let exact = 0;
        let bound = 0;
        for (let k = 0; k < K; k++) {
          exact += x[r * K + k] * w[k * N + n];
          bound += (Math.abs(x[r * K + k]) * scaleOf(k, n)) / 2;
        }
        const err = Math.abs(got[r * N + n] - exact);
        assert.ok(err <= bound * 1.001 + 1e-5, `row ${r} col ${n}: error ${err} > bound ${bound}`);
        worst = Math.max(worst, err / bound);
      }
    assert.ok(worst > 0.01, 'the weights really are quantized (errors are not all zero)');
  });
}

test('every variant file of an exported GPT-2 loads in transformers.js under its dtype and generates', async () => {
  env.allowRemoteModels = false;
  env.useFSCache = false;
  env.localModelPath = tmp;
  const folder = tinyFolder(join(tmp, 'src'), 'gpt2', 9);
  const result = exportPortableFolder(join(tmp, 'gpt2'), folder, {
    variants: ['fp32', 'fp16', 'int8', 'q8', 'uint8', 'q4'],
  });
  assert.deepEqual(
    result.onnx.map((o) => o.file),
    ['', '_fp16', '_int8', '_quantized', '_uint8', '_q4'].map((s) => `onnx/model${s}.onnx`),
  );
  const ids = folder.tokenizer!.encode('the quick brown');
  const { Tensor: T } = await import('@huggingface/transformers');
  const input_ids = new T('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
  const attention_mask = new T('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
  const logitsOf = async (dtype: string) => {
    const model = await AutoModelForCausalLM.from_pretrained('gpt2', { dtype: dtype as 'fp32' });
    try {
      const logits = (await model({ input_ids, attention_mask })).logits as Tensor;
      const out = (await model.generate({
        input_ids,
        attention_mask,
        max_new_tokens: 6,
        do_sample: false,
      })) as Tensor;
      assert.ok(out.dims[1] > ids.length, `${dtype} generated tokens`);
      return Float32Array.from(logits.data as Float32Array);
    } finally {
      await model.dispose();
    }
  };
  const reference = await logitsOf('fp32');
  const scale = Math.max(...reference.map(Math.abs));
  // Relative logit errors of weight rounding on this tiny random model: fp16 keeps 11 bits, 8-bit 7-8, 4-bit 4.
  for (const [dtype, tol] of [
    ['fp16', 5e-3],
    ['int8', 0.1],
    ['q8', 0.1],
    ['uint8', 0.1],
    ['q4', 0.6],
  ] as const) {
    const got = await logitsOf(dtype);
    let err = 0;
    for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - reference[i]));
    assert.ok(err / scale < tol, `${dtype}: relative logit error ${(err / scale).toExponential(2)} ≥ ${tol}`);
    assert.ok(err > 0, `${dtype} weights differ from float32`);
  }
});

before(() => {
  // Fail early and clearly if transformers.js picked another onnxruntime than the project's.
  assert.equal(ort.env.versions.node, '1.30.0');
});
