/** Shape and layout ops with static shapes: reshape, transpose, slice, pad, concat, split, expand. */

import { TlabError } from '../../util/errors.ts';
import type { Value } from '../ir/graph.ts';
import { broadcastShapes, formatShape, normalizeAxis, product, sameShape } from '../ir/shape.ts';
import { attr } from '../onnx/model.ts';
import { unbroadcast } from './broadcast.ts';
import { zeros } from './creation.ts';
import { apply, apply1, defineOp, shapeError } from './registry.ts';

defineOp('Reshape', {
  infer: (inputs, p) => {
    const shape = p.shape as number[];
    if (product(shape) !== inputs[0].size) {
      throw shapeError(
        'Reshape',
        inputs,
        `cannot reshape ${inputs[0].size} elements to ${formatShape(shape)}`,
      );
    }
    return [{ dtype: inputs[0].dtype, shape }];
  },
  emit: (ctx, n) =>
    ctx.node(
      'Reshape',
      [ctx.name(n.inputs[0]), ctx.int64(n.params.shape as number[])],
      [ctx.name(n.outputs[0])],
    ),
  vjp: (n, cts) => [cts[0] ? reshape(cts[0], n.inputs[0].shape) : null],
});

defineOp('Transpose', {
  infer: (inputs, p) => {
    const perm = p.perm as number[];
    const x = inputs[0];
    if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((v, i) => v !== i)) {
      throw shapeError(
        'Transpose',
        inputs,
        `perm [${perm.join(', ')}] is not a permutation of ${x.rank} axes`,
      );
    }
    return [{ dtype: x.dtype, shape: perm.map((a) => x.shape[a]) }];
  },
  attrs: (p) => [attr.ints('perm', p.perm as number[])],
  vjp: (n, cts) => {
    if (!cts[0]) return [null];
    const perm = n.params.perm as number[];
    const inverse = new Array<number>(perm.length);
    perm.forEach((a, i) => {
      inverse[a] = i;
    });
    return [transpose(cts[0], inverse)];
  },
});

defineOp('Slice', {
  infer: (inputs, p) => {
    const x = inputs[0];
    const starts = p.starts as number[];
    const ends = p.ends as number[];
    const axes = p.axes as number[];
    const shape = [...x.shape];
    axes.forEach((a, i) => {
      if (starts[i] < 0 || ends[i] > x.shape[a] || starts[i] > ends[i]) {
        throw shapeError(
          'Slice',
          inputs,
          `range ${starts[i]}:${ends[i]} is outside axis ${a} of size ${x.shape[a]}`,
        );
      }
      shape[a] = ends[i] - starts[i];
    });
    return [{ dtype: x.dtype, shape }];
  },
  emit: (ctx, n) => {
    const p = n.params;
    ctx.node(
      'Slice',
      [
        ctx.name(n.inputs[0]),
        ctx.int64(p.starts as number[]),
        ctx.int64(p.ends as number[]),
        ctx.int64(p.axes as number[]),
      ],
      [ctx.name(n.outputs[0])],
    );
  },
  vjp: (n, cts) => {
    if (!cts[0]) return [null];
    const x = n.inputs[0];
    const before = new Array<number>(x.rank).fill(0);
    const after = new Array<number>(x.rank).fill(0);
    (n.params.axes as number[]).forEach((a, i) => {
      before[a] = (n.params.starts as number[])[i];
      after[a] = x.shape[a] - (n.params.ends as number[])[i];
    });
    return [pad(cts[0], before, after)];
  },
});

defineOp('Pad', {
  infer: (inputs, p) => {
    const x = inputs[0];
    const before = p.before as number[];
    const after = p.after as number[];
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => d + before[i] + after[i]) }];
  },
  emit: (ctx, n) => {
    const pads = [...(n.params.before as number[]), ...(n.params.after as number[])];
    ctx.node(
      'Pad',
      [ctx.name(n.inputs[0]), ctx.int64(pads)],
      [ctx.name(n.outputs[0])],
      [attr.string('mode', 'constant')],
    );
  },
  vjp: (n, cts) => {
    if (!cts[0]) return [null];
    const x = n.inputs[0];
    const before = n.params.before as number[];
    return [
      slice(
        cts[0],
        x.shape.map((_, i) => i),
        before,
        x.shape.map((d, i) => before[i] + d),
      ),
    ];
  },
});

defineOp('Concat', {
  infer: (inputs, p) => {
    const axis = p.axis as number;
    const first = inputs[0];
    for (const v of inputs) {
      if (
        v.dtype !== first.dtype ||
        v.rank !== first.rank ||
        v.shape.some((d, i) => i !== axis && d !== first.shape[i])
      ) {
        throw shapeError('Concat', inputs, `inputs must agree on dtype and on every axis but ${axis}`);
      }
    }
    const shape = [...first.shape];
    shape[axis] = inputs.reduce((s, v) => s + v.shape[axis], 0);
    return [{ dtype: first.dtype, shape }];
  },
  attrs: (p) => [attr.int('axis', p.axis as number)],
  vjp: (n, cts) => {
    if (!cts[0]) return n.inputs.map(() => null);
    return split(
      cts[0],
      n.inputs.map((v) => v.shape[n.params.axis as number]),
      n.params.axis as number,
    );
  },
});

defineOp('Split', {
  infer: (inputs, p) => {
    const x = inputs[0];
    const axis = p.axis as number;
    const sizes = p.sizes as number[];
    if (sizes.reduce((a, b) => a + b, 0) !== x.shape[axis]) {
      throw shapeError(
        'Split',
        inputs,
        `sizes [${sizes.join(', ')}] do not add up to axis ${axis} of size ${x.shape[axis]}`,
      );
    }
    return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === axis ? s : d)) }));
  },
  emit: (ctx, n) =>
    ctx.node(
      'Split',
      [ctx.name(n.inputs[0]), ctx.int64(n.params.sizes as number[])],
      n.outputs.map((v) => ctx.name(v)),
      [attr.int('axis', n.params.axis as number)],
    ),
  vjp: (n, cts) => {
    if (cts.every((c) => !c)) return [null];
    const parts = n.outputs.map((o, i) => cts[i] ?? zeros(o.graph, o.dtype, o.shape));
    return [concat(parts, n.params.axis as number)];
  },
});

defineOp('Expand', {
  infer: (inputs, p) => {
    const shape = p.shape as number[];
    try {
      const out = broadcastShapes('Expand', inputs[0].shape, shape);
      return [{ dtype: inputs[0].dtype, shape: out }];
    } catch {
      throw shapeError('Expand', inputs, `cannot expand to ${formatShape(shape)}`);
    }
  },
  emit: (ctx, n) =>
    ctx.node(
      'Expand',
      [ctx.name(n.inputs[0]), ctx.int64(n.params.shape as number[])],
      [ctx.name(n.outputs[0])],
    ),
  vjp: (n, cts) => [cts[0] ? unbroadcast(cts[0], n.inputs[0].shape) : null],
});

// ---- functional API ----

/** Reshape to a static shape; one entry may be -1 (inferred). */
export function reshape(x: Value, shape: readonly number[]): Value {
  const resolved = [...shape];
  const unknown = resolved.indexOf(-1);
  if (unknown >= 0) {
    const known = product(resolved.filter((_, i) => i !== unknown));
    if (known === 0 || x.size % known !== 0) {
      throw new TlabError(`Reshape: cannot reshape ${x} to ${formatShape(shape)}`);
    }
    resolved[unknown] = x.size / known;
  }
  if (sameShape(resolved, x.shape)) return x;
  return apply1('Reshape', [x], { shape: resolved });
}

export function transpose(x: Value, perm?: readonly number[]): Value {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.every((a, i) => a === i)) return x;
  return apply1('Transpose', [x], { perm: [...p] });
}

/** Swaps the last two axes. */
export function transposeLast2(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 1] = x.rank - 2;
  perm[x.rank - 2] = x.rank - 1;
  return transpose(x, perm);
}

/** Step-1 slice: for each listed axis keep [start, end); negative bounds count from the end. */
export function slice(
  x: Value,
  axes: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
): Value {
  const a = axes.map((ax) => normalizeAxis('Slice', ax, x.rank));
  const s = starts.map((v, i) => (v < 0 ? v + x.shape[a[i]] : v));
  const e = ends.map((v, i) => Math.min(v < 0 ? v + x.shape[a[i]] : v, x.shape[a[i]]));
  if (a.every((ax, i) => s[i] === 0 && e[i] === x.shape[ax])) return x;
  return apply1('Slice', [x], { axes: a, starts: s, ends: e });
}

/** Zero padding before/after each axis. */
export function pad(x: Value, before: readonly number[], after: readonly number[]): Value {
  if (before.every((v) => v === 0) && after.every((v) => v === 0)) return x;
  return apply1('Pad', [x], { before: [...before], after: [...after] });
}

export function concat(xs: readonly Value[], axis: number): Value {
  if (xs.length === 1) return xs[0];
  return apply1('Concat', xs, { axis: normalizeAxis('Concat', axis, xs[0].rank) });
}

export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  if (sizes.length === 1) return [x];
  return apply('Split', [x], { axis: normalizeAxis('Split', axis, x.rank), sizes: [...sizes] });
}

export function expand(x: Value, shape: readonly number[]): Value {
  if (sameShape(x.shape, shape)) return x;
  return apply1('Expand', [x], { shape: [...shape] });
}

/** Inserts a size-1 axis at `axis`. */
export function unsqueeze(x: Value, axis: number): Value {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

/** Removes size-1 axes (the given ones, or all). */
export function squeeze(x: Value, axes?: readonly number[]): Value {
  const drop = axes
    ? axes.map((a) => normalizeAxis('Squeeze', a, x.rank))
    : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  for (const a of drop)
    if (x.shape[a] !== 1) throw new TlabError(`Squeeze: axis ${a} of ${x} has size ${x.shape[a]}, not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => !drop.includes(i)),
  );
}

/** Collapses axes [from, to] (inclusive) into one. */
export function flatten(x: Value, from = 0, to = -1): Value {
  const f = normalizeAxis('Flatten', from, x.rank);
  const t = normalizeAxis('Flatten', to, x.rank);
  const shape = [...x.shape.slice(0, f), product(x.shape.slice(f, t + 1)), ...x.shape.slice(t + 1)];
  return reshape(x, shape);
}
