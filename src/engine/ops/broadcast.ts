/** Un-broadcasting, in one place: every broadcasting op's VJP sums its cotangent back to the operand's shape. */
import type { Value } from '../ir/graph.ts';
import { broadcastReductionAxes, type Shape, sameShape } from '../ir/shape.ts';
import { reshape } from './movement.ts';
import { reduceSum } from './reduce.ts';

export function unbroadcast(g: Value, to: Shape): Value {
  if (sameShape(g.shape, to)) return g;
  const axes = broadcastReductionAxes(to, g.shape);
  const summed = axes.length ? reduceSum(g, axes, false) : g;
  return sameShape(summed.shape, to) ? summed : reshape(summed, to);
}
