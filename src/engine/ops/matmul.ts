/** Matrix multiplication with numpy batch broadcasting, and its VJP. */
import type { Value } from '../ir/graph.ts';
import { broadcastShapes } from '../ir/shape.ts';
import { unbroadcast } from './broadcast.ts';
import { reshape, squeeze, transposeLast2, unsqueeze } from './movement.ts';
import { apply1, defineOp, shapeError } from './registry.ts';

defineOp('MatMul', {
  infer: (inputs) => {
    const [a, b] = inputs;
    if (a.dtype !== b.dtype)
      throw shapeError('MatMul', inputs, `operand dtypes differ (${a.dtype} vs ${b.dtype})`);
    if (a.rank < 2 || b.rank < 2) throw shapeError('MatMul', inputs, 'operands must have rank >= 2');
    const k = a.shape[a.rank - 1];
    if (b.shape[b.rank - 2] !== k) {
      throw shapeError('MatMul', inputs, `inner dimensions differ (${k} vs ${b.shape[b.rank - 2]})`);
    }
    let batch: number[];
    try {
      batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
    } catch {
      throw shapeError('MatMul', inputs, 'batch dimensions do not broadcast');
    }
    return [{ dtype: a.dtype, shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]] }];
  },
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return [null, null];
    const [a, b] = n.inputs;
    const da = unbroadcast(matmul(g, transposeLast2(b)), a.shape);
    let db: Value;
    if (b.rank === 2 && a.rank > 2) {
      // Weight gradient of a batched input: fold the batch into rows and use one 2-D product.
      const k = a.shape[a.rank - 1];
      const m = g.shape[g.rank - 1];
      db = matmul(transposeLast2(reshape(a, [-1, k])), reshape(g, [-1, m]));
    } else {
      db = unbroadcast(matmul(transposeLast2(a), g), b.shape);
    }
    return [da, db];
  },
});

/** a @ b; 1-D operands are promoted as in numpy (a vector on the left is a row, on the right a column). */
export function matmul(a: Value, b: Value): Value {
  if (a.rank === 1 && b.rank === 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), []);
  if (a.rank === 1) return squeeze(matmul(unsqueeze(a, 0), b), [-2]);
  if (b.rank === 1) return squeeze(matmul(a, unsqueeze(b, 1)), [-1]);
  return apply1('MatMul', [a, b]);
}
