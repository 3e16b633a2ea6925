import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gradcheck } from '../../src/engine/autodiff/gradcheck.ts';
import type { Value } from '../../src/engine/ir/graph.ts';
import * as T from '../../src/engine/ops/index.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { int64, randn, uniform } from './helpers.ts';

interface Case {
  name: string;
  inputs: HostTensor[];
  constants?: HostTensor[];
  build: (x: Value[]) => Value;
}

const s = (shape: number[], seed: number) => randn(shape, seed);
const pos = (shape: number[], seed: number) => uniform(shape, seed, 0.5, 2);

const cases: Case[] = [
  { name: 'add broadcast', inputs: [s([2, 3, 4], 1), s([3, 1], 2)], build: ([a, b]) => T.add(a, b) },
  { name: 'sub broadcast', inputs: [s([4], 3), s([2, 3, 4], 4)], build: ([a, b]) => T.sub(a, b) },
  { name: 'mul broadcast', inputs: [s([2, 1, 4], 5), s([3, 1], 6)], build: ([a, b]) => T.mul(a, b) },
  { name: 'div broadcast', inputs: [s([2, 3], 7), pos([3], 8)], build: ([a, b]) => T.div(a, b) },
  { name: 'pow', inputs: [pos([2, 3], 9), s([2, 3], 10)], build: ([a, b]) => T.pow(a, b) },
  { name: 'pow scalar exponent', inputs: [pos([5], 11)], build: ([a]) => T.pow(a, 3) },
  { name: 'maximum', inputs: [s([3, 4], 12), s([4], 13)], build: ([a, b]) => T.maximum(a, b) },
  { name: 'minimum', inputs: [s([3, 4], 14), s([3, 4], 15)], build: ([a, b]) => T.minimum(a, b) },
  { name: 'neg', inputs: [s([3, 2], 16)], build: ([a]) => T.neg(a) },
  { name: 'exp', inputs: [s([3, 2], 17)], build: ([a]) => T.exp(a) },
  { name: 'log', inputs: [pos([3, 2], 18)], build: ([a]) => T.log(a) },
  { name: 'sqrt', inputs: [pos([3, 2], 19)], build: ([a]) => T.sqrt(a) },
  { name: 'rsqrt', inputs: [pos([3, 2], 20)], build: ([a]) => T.rsqrt(a) },
  { name: 'reciprocal', inputs: [pos([3, 2], 21)], build: ([a]) => T.reciprocal(a) },
  { name: 'tanh', inputs: [s([3, 2], 22)], build: ([a]) => T.tanh(a) },
  { name: 'sigmoid', inputs: [s([3, 2], 23)], build: ([a]) => T.sigmoid(a) },
  { name: 'relu', inputs: [s([3, 4], 24)], build: ([a]) => T.relu(a) },
  { name: 'silu', inputs: [s([3, 4], 25)], build: ([a]) => T.silu(a) },
  { name: 'abs', inputs: [s([3, 4], 26)], build: ([a]) => T.abs(a) },
  { name: 'softmax last axis', inputs: [s([2, 3, 5], 30)], build: ([a]) => T.softmax(a, -1) },
  { name: 'softmax axis 0', inputs: [s([3, 4], 31)], build: ([a]) => T.softmax(a, 0) },
  { name: 'logSoftmax', inputs: [s([2, 6], 32)], build: ([a]) => T.logSoftmax(a, -1) },
  {
    name: 'layerNorm with bias',
    inputs: [s([2, 3, 6], 33), s([6], 34), s([6], 35)],
    build: ([x, w, b]) => T.layerNorm(x, w, b, 1e-5),
  },
  {
    name: 'layerNorm without bias',
    inputs: [s([4, 5], 36), s([5], 37)],
    build: ([x, w]) => T.layerNorm(x, w, null, 1e-5),
  },
  { name: 'rmsNorm', inputs: [s([2, 3, 6], 38), s([6], 39)], build: ([x, w]) => T.rmsNorm(x, w, 1e-6) },
  { name: 'reduceSum axes', inputs: [s([2, 3, 4], 40)], build: ([a]) => T.reduceSum(a, [0, 2]) },
  { name: 'reduceSum keepdims', inputs: [s([2, 3, 4], 41)], build: ([a]) => T.reduceSum(a, [1], true) },
  { name: 'reduceMean', inputs: [s([2, 3, 4], 42)], build: ([a]) => T.reduceMean(a, [-1]) },
  { name: 'reduceMax', inputs: [s([3, 5], 43)], build: ([a]) => T.reduceMax(a, [1]) },
  { name: 'reduceMin keepdims', inputs: [s([3, 5], 44)], build: ([a]) => T.reduceMin(a, [0], true) },
  {
    name: 'reshape',
    inputs: [s([2, 6], 45)],
    build: ([a]) => T.mul(T.reshape(a, [3, -1]), T.reshape(a, [3, 4])),
  },
  { name: 'transpose', inputs: [s([2, 3, 4], 46)], build: ([a]) => T.mul(T.transpose(a, [2, 0, 1]), 1.5) },
  { name: 'slice', inputs: [s([4, 5], 47)], build: ([a]) => T.slice(a, [0, 1], [1, 2], [3, 5]) },
  { name: 'pad', inputs: [s([2, 3], 48)], build: ([a]) => T.pad(a, [1, 0], [0, 2]) },
  { name: 'concat', inputs: [s([2, 3], 49), s([2, 2], 50)], build: ([a, b]) => T.concat([a, b, a], 1) },
  {
    name: 'split (one part unused)',
    inputs: [s([5, 2], 51)],
    build: ([a]) => {
      const [p, , r] = T.split(a, [2, 1, 2], 0);
      return T.mul(p, r);
    },
  },
  { name: 'expand', inputs: [s([3, 1], 52)], build: ([a]) => T.expand(a, [2, 3, 4]) },
  {
    name: 'squeeze/unsqueeze',
    inputs: [s([3, 1, 2], 53)],
    build: ([a]) => T.unsqueeze(T.squeeze(a, [1]), 0),
  },
  { name: 'matmul 2-D', inputs: [s([3, 4], 54), s([4, 5], 55)], build: ([a, b]) => T.matmul(a, b) },
  {
    name: 'matmul batched weight',
    inputs: [s([2, 3, 4], 56), s([4, 5], 57)],
    build: ([a, b]) => T.matmul(a, b),
  },
  {
    name: 'matmul broadcast batch',
    inputs: [s([2, 1, 3, 4], 58), s([3, 4, 2], 59)],
    build: ([a, b]) => T.matmul(a, b),
  },
  { name: 'matmul vector', inputs: [s([4], 60), s([4, 3], 61)], build: ([a, b]) => T.matmul(a, b) },
  { name: 'matmul dot', inputs: [s([4], 62), s([4], 63)], build: ([a, b]) => T.matmul(a, b) },
  {
    name: 'gather rows with repeated indices',
    inputs: [s([5, 3], 64)],
    constants: [int64([2, 3], [1, 4, 1, 0, 1, 4])],
    build: ([w, idx]) => T.gather(w, idx, 0),
  },
  {
    name: 'gather along axis 1',
    inputs: [s([2, 4, 3], 65)],
    constants: [int64([3], [3, 0, 3])],
    build: ([w, idx]) => T.gather(w, idx, 1),
  },
  {
    name: 'gatherElements',
    inputs: [s([3, 4], 66)],
    constants: [int64([3, 2], [0, 3, 3, 3, 1, 2])],
    build: ([w, idx]) => T.gatherElements(w, idx, 1),
  },
  {
    name: 'where with masked fill',
    inputs: [s([3, 4], 67), s([4], 68)],
    build: ([a, b]) => T.where(T.greater(a, 0), a, b),
  },
  {
    name: 'cross-entropy with ignore index and label smoothing',
    inputs: [s([2, 3, 5], 69)],
    constants: [int64([2, 3], [1, -100, 4, 0, 2, -100])],
    build: ([logits, y]) => T.crossEntropy(logits, y, { labelSmoothing: 0.1 }),
  },
  {
    name: 'cross-entropy sum',
    inputs: [s([4, 3], 70)],
    constants: [int64([4], [0, 2, 1, 2])],
    build: ([logits, y]) => T.crossEntropy(logits, y, { reduction: 'sum' }),
  },
  {
    // 4-bit weights (nn/quant.ts): float64 takes the explicit dequantization; the fused float32 kernels are checked
    // against it in test/nn/quant.test.ts. Dequantize4Bit and DequantizeBlockwise8Bit read integer codes: no VJP.
    name: 'matmul4Bit (int4 codes, block 16)',
    inputs: [s([3, 32], 72)],
    constants: [
      {
        dtype: 'uint8',
        shape: [4, 2, 8],
        data: Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 255),
      },
      {
        dtype: 'float32',
        shape: [4, 2],
        data: Float32Array.from([0.1, 0.2, 0.05, 0.3, 0.15, 0.25, 0.12, 0.07]),
      },
    ],
    build: ([x, codes, scales]) =>
      T.matmul4Bit(x, codes, scales, { format: 'int4', rows: 4, cols: 32, blockSize: 16 }),
  },
  {
    name: 'dropout',
    inputs: [s([4, 8], 71)],
    constants: [int64([2], [12345, 678])],
    build: ([x, key]) => T.dropout(x, 0.3, key),
  },
];

describe('float64 finite-difference checks of every VJP', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const report = await gradcheck(c.build, c.inputs, { constants: c.constants });
      report.relErrors.forEach((e, i) => {
        assert.ok(e < 1e-6, `input ${i}: relative error ${e.toExponential(2)} >= 1e-6`);
      });
    });
  }
});
