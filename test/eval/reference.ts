/**
 * An independent reference for the eval tests: one unpadded row through a plain full-forward program (no
 * padding, masks, pooling or in-graph reductions), with log-softmax done on the host in float64.
 */
import { Graph } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { ParamBuilder } from '../../src/nn/module.ts';

export interface ReferenceOutputs {
  /** [n][V] */
  logits: Float32Array[];
  /** layer → [n][D] */
  hidden: Float32Array[][];
}

export async function referenceForward(
  model: DecoderLm,
  weights: ReadonlyMap<string, HostTensor>,
  ids: readonly number[],
): Promise<ReferenceOutputs> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const n = ids.length;
  const out = model.forward(pb, { ids: graph.input('ids', 'int64', [1, n]) });
  const outputs = Object.fromEntries([
    ['logits', out.logits],
    ...out.hiddenStates.map((h, i) => [`h${i}`, h]),
  ]);
  const bind = new Map([...pb.specs.keys()].map((k) => [k, weights.get(k)!]));
  const program = await Program.compile(graph, { outputs, bind });
  try {
    const r = await program.run({
      ids: { dtype: 'int64', shape: [1, n], data: BigInt64Array.from(ids.map(BigInt)) },
    });
    const rows = (t: HostTensor, width: number) =>
      Array.from({ length: n }, (_, i) => (t.data as Float32Array).slice(i * width, (i + 1) * width));
    return {
      logits: rows(r.logits, model.vocabSize),
      hidden: out.hiddenStates.map((_, i) => rows(r[`h${i}`], model.hiddenSize)),
    };
  } finally {
    await program.release();
  }
}

/** log softmax(x)[i] in float64. */
export function logSoftmaxAt(x: ArrayLike<number>, i: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < x.length; j++) max = Math.max(max, x[j]);
  let sum = 0;
  for (let j = 0; j < x.length; j++) sum += Math.exp(x[j] - max);
  return x[i] - max - Math.log(sum);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
