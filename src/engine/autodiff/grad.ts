/**
 * Reverse-mode differentiation over the IR: walks the nodes between `wrt` and the loss backwards, applying each
 * op's VJP (itself written in ops, so the backward graph is ordinary ONNX). Only paths that connect a requested
 * input to the loss are differentiated; lowering drops anything else.
 */

import { TlabError } from '../../util/errors.ts';
import { isFloat } from '../dtype.ts';
import { type Node, nodesNeededFor, type Value } from '../ir/graph.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import { ones, zerosLike } from '../ops/creation.ts';
import { add } from '../ops/elementwise.ts';
import { opDef } from '../ops/registry.ts';

/** Gradients of a scalar `loss` (or of Σ seed ⊙ loss when a seed cotangent is given) with respect to `wrt`. */
export function grad(loss: Value, wrt: readonly Value[], seed?: Value): Value[] {
  const graph = loss.graph;
  if (!isFloat(loss.dtype)) throw new TlabError(`grad: loss ${loss} must be floating-point`);
  if (!seed && loss.size !== 1)
    throw new TlabError(`grad: loss ${loss} is not a scalar; pass a seed cotangent`);
  if (seed && (seed.dtype !== loss.dtype || !sameShape(seed.shape, loss.shape))) {
    throw new TlabError(`grad: seed ${seed} must match loss ${loss}`);
  }
  for (const w of wrt) {
    if (w.graph !== graph) throw new TlabError(`grad: ${w} belongs to another graph`);
    if (!isFloat(w.dtype))
      throw new TlabError(`grad: cannot differentiate with respect to ${w} (not floating-point)`);
  }

  const needed = nodesNeededFor(graph, [loss]);
  const live = new Set<Value>(wrt);
  const path: Node[] = [];
  for (const node of needed) {
    const def = opDef(node.op);
    if (def.nondifferentiable || !node.inputs.some((v) => live.has(v))) continue;
    path.push(node);
    for (const o of node.outputs) if (isFloat(o.dtype)) live.add(o);
  }

  const cot = new Map<Value, Value>();
  cot.set(loss, seed ?? ones(graph, loss.dtype, loss.shape));
  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i];
    const cts = node.outputs.map((o) => cot.get(o) ?? null);
    if (cts.every((c) => c === null)) continue;
    const def = opDef(node.op);
    if (!def.vjp) {
      throw new TlabError(
        `grad: op ${node.op}${node.scope ? ` (in ${node.scope})` : ''} has no VJP but lies on the path to the loss`,
      );
    }
    const ins = graph.withScope(node.scope ? `${node.scope}.grad` : 'grad', () => def.vjp!(node, cts));
    node.inputs.forEach((input, k) => {
      const g = ins[k];
      if (!g || !live.has(input)) return;
      if (!sameShape(g.shape, input.shape) || g.dtype !== input.dtype) {
        throw new Error(
          `internal: VJP of ${node.op} gave ${g.dtype}${formatShape(g.shape)} for input ${input.dtype}${formatShape(input.shape)}`,
        );
      }
      const prev = cot.get(input);
      cot.set(input, prev ? add(prev, g) : g);
    });
  }
  return wrt.map((w) => cot.get(w) ?? zerosLike(w));
}
