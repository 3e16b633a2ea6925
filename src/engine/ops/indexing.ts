/** Indexing ops: gather (embedding lookup), gather-elements, scatter-add (their VJPs) and one-hot. */
import type { Value } from '../ir/graph.ts';
import { normalizeAxis } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { arange, emitFilled } from './creation.ts';
import { cast, equal } from './elementwise.ts';
import { transpose, unsqueeze } from './movement.ts';
import { apply1, defineOp, shapeError } from './registry.ts';

defineOp('Gather', {
  infer: (inputs, p) => {
    const [data, idx] = inputs;
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32')
      throw shapeError('Gather', inputs, 'indices must be int64 or int32');
    const axis = p.axis as number;
    return [
      {
        dtype: data.dtype,
        shape: [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)],
      },
    ];
  },
  attrs: (p) => [attr.int('axis', p.axis as number)],
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return [null, null];
    const [data, idx] = n.inputs;
    const axis = n.params.axis as number;
    if (axis === 0) return [scatterAddRows(data.shape, idx, g), null];
    // Move the gathered axis to the front, scatter rows, move it back.
    const perm = [axis, ...data.shape.map((_, i) => i).filter((i) => i !== axis)];
    const inv = perm.map((_, i) => perm.indexOf(i));
    const gPerm = [
      ...idx.shape.map((_, i) => axis + i),
      ...g.shape.map((_, i) => i).filter((i) => i < axis || i >= axis + idx.rank),
    ];
    const rows = scatterAddRows(
      perm.map((a) => data.shape[a]),
      idx,
      transpose(g, gPerm),
    );
    return [transpose(rows, inv), null];
  },
});

/**
 * zeros(shape) with rows `idx` incremented by `updates` (ScatterND, reduction add): repeated indices accumulate.
 * updates has shape idx.shape + shape[1:].
 */
defineOp('ScatterAddRows', {
  infer: (inputs, p) => [{ dtype: inputs[1].dtype, shape: p.shape as number[] }],
  emit: (ctx, n) => {
    const [idx, updates] = n.inputs;
    const base = ctx.temp('zeros');
    emitFilled(ctx, base, updates.dtype, n.params.shape as number[], 0);
    const idx2 = ctx.temp('idx');
    ctx.node('Unsqueeze', [ctx.name(idx), ctx.int64([-1])], [idx2]);
    ctx.node(
      'ScatterND',
      [base, idx2, ctx.name(updates)],
      [ctx.name(n.outputs[0])],
      [attr.string('reduction', 'add')],
    );
  },
});

function scatterAddRows(shape: readonly number[], idx: Value, updates: Value): Value {
  const expected = [...idx.shape, ...shape.slice(1)];
  if (updates.rank !== expected.length || updates.shape.some((d, i) => d !== expected[i])) {
    throw shapeError('ScatterAddRows', [idx, updates], `updates must have shape [${expected.join(', ')}]`);
  }
  return apply1('ScatterAddRows', [idx, updates], { shape: [...shape] });
}

defineOp('GatherElements', {
  infer: (inputs, p) => {
    const [data, idx] = inputs;
    const axis = p.axis as number;
    if (idx.rank !== data.rank || idx.shape.some((d, i) => i !== axis && d !== data.shape[i])) {
      throw shapeError(
        'GatherElements',
        inputs,
        'indices must match data on every axis but the gathered one',
      );
    }
    return [{ dtype: data.dtype, shape: idx.shape }];
  },
  attrs: (p) => [attr.int('axis', p.axis as number)],
  vjp: (n, cts) => {
    const g = cts[0];
    if (!g) return [null, null];
    const [data, idx] = n.inputs;
    return [apply1('ScatterAddElements', [idx, g], { shape: [...data.shape], axis: n.params.axis }), null];
  },
});

defineOp('ScatterAddElements', {
  infer: (inputs, p) => [{ dtype: inputs[1].dtype, shape: p.shape as number[] }],
  emit: (ctx, n) => {
    const [idx, updates] = n.inputs;
    const base = ctx.temp('zeros');
    emitFilled(ctx, base, updates.dtype, n.params.shape as number[], 0);
    ctx.node(
      'ScatterElements',
      [base, ctx.name(idx), ctx.name(updates)],
      [ctx.name(n.outputs[0])],
      [attr.int('axis', n.params.axis as number), attr.string('reduction', 'add')],
    );
  },
});

/** Rows of `data` along `axis` picked by integer `indices` (embedding lookup when axis = 0). */
export function gather(data: Value, indices: Value, axis = 0): Value {
  return apply1('Gather', [data, indices], { axis: normalizeAxis('Gather', axis, data.rank) });
}

/** out[i][j] = data[i][idx[i][j]] along `axis` (torch.gather). */
export function gatherElements(data: Value, indices: Value, axis: number): Value {
  return apply1('GatherElements', [data, indices], {
    axis: normalizeAxis('GatherElements', axis, data.rank),
  });
}

/** One-hot encoding along a new last axis; out-of-range indices give all-zero rows. */
export function oneHot(indices: Value, depth: number, dtype: Value['dtype'] = 'float32'): Value {
  return cast(equal(unsqueeze(indices, -1), arange(indices.graph, depth, indices.dtype)), dtype);
}
