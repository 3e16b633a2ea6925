/**
 * Finite-difference gradient checking through onnxruntime: the function's VJP graph is compared with central
 * differences of the forward graph, both run in float64 (or float32 for ops without float64 kernels).
 */

import { Rng } from '../../util/random.ts';
import type { DType } from '../dtype.ts';
import { Graph, type Value } from '../ir/graph.ts';
import { constant } from '../ops/creation.ts';
import { mul } from '../ops/elementwise.ts';
import { reduceSum } from '../ops/reduce.ts';
import { Program } from '../runtime/session.ts';
import { type HostTensor, numel } from '../tensor.ts';
import { grad } from './grad.ts';

export interface GradcheckOptions {
  /** Perturbation; default 1e-6 in float64, 1e-2 in float32. */
  eps?: number;
  /** Which inputs to check (default: every float input). */
  wrt?: readonly number[];
  /** Non-differentiable extra inputs (indices, masks) fed unchanged. */
  constants?: readonly HostTensor[];
}

export interface GradcheckReport {
  /** Per checked input: max |analytic − numeric| / max(max |numeric|, 1e-12). */
  relErrors: number[];
  analytic: Float64Array[];
  numeric: Float64Array[];
}

/**
 * Checks d/dx Σ r ⊙ f(x) for a fixed random r. `build` receives the graph inputs (the float inputs first, then the
 * constants) and returns f's output.
 */
export async function gradcheck(
  build: (inputs: Value[]) => Value,
  inputs: readonly HostTensor[],
  options: GradcheckOptions = {},
): Promise<GradcheckReport> {
  const dtype: DType = inputs[0].dtype;
  const eps = options.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const all = [...inputs, ...(options.constants ?? [])];
  const g = new Graph();
  const vals = all.map((t, i) => g.input(`x${i}`, t.dtype, t.shape));
  const out = build(vals);
  const rand = new Rng(1234);
  const r = constant(
    g,
    out.dtype,
    out.shape,
    Array.from({ length: out.size }, () => rand.next() * 2 - 1),
  );
  const loss = reduceSum(mul(out, r));
  const wrtIdx = options.wrt ?? inputs.map((_, i) => i);
  const grads = grad(
    loss,
    wrtIdx.map((i) => vals[i]),
  );
  const outputs: Record<string, Value> = { loss };
  grads.forEach((gv, k) => {
    outputs[`g${k}`] = gv;
  });
  const program = await Program.compile(g, { outputs, optimization: 'disabled', threads: 1 });
  let lossOnly: Program | null = null;
  try {
    lossOnly = await Program.compile(g, { outputs: { loss }, optimization: 'disabled', threads: 1 });
    return await compare(program, lossOnly, all, wrtIdx, eps);
  } finally {
    // Released even when a run throws (a kernel without float64 support, a bad constant): no leaked sessions.
    await program.release();
    await lossOnly?.release();
  }
}

/** Analytic gradients from `program` against central differences of `lossOnly`, input by input. */
async function compare(
  program: Program,
  lossOnly: Program,
  all: readonly HostTensor[],
  wrtIdx: readonly number[],
  eps: number,
): Promise<GradcheckReport> {
  const feeds: Record<string, HostTensor> = {};
  all.forEach((t, i) => {
    feeds[`x${i}`] = t;
  });
  const base = await program.run(feeds);
  const report: GradcheckReport = { relErrors: [], analytic: [], numeric: [] };
  for (let k = 0; k < wrtIdx.length; k++) {
    const i = wrtIdx[k];
    const analytic = Float64Array.from(base[`g${k}`].data as Float64Array);
    const n = numel(all[i].shape);
    const numeric = new Float64Array(n);
    const data = (all[i].data as Float64Array).slice();
    const perturbed = { ...all[i], data };
    for (let e = 0; e < n; e++) {
      const orig = data[e];
      data[e] = orig + eps;
      const plus = (await lossOnly.run({ ...feeds, [`x${i}`]: perturbed })).loss.data[0] as number;
      data[e] = orig - eps;
      const minus = (await lossOnly.run({ ...feeds, [`x${i}`]: perturbed })).loss.data[0] as number;
      data[e] = orig;
      numeric[e] = (plus - minus) / (2 * eps);
    }
    let maxDiff = 0;
    let maxRef = 1e-12;
    for (let e = 0; e < n; e++) {
      maxDiff = Math.max(maxDiff, Math.abs(analytic[e] - numeric[e]));
      maxRef = Math.max(maxRef, Math.abs(numeric[e]));
    }
    report.relErrors.push(maxDiff / maxRef);
    report.analytic.push(analytic);
    report.numeric.push(numeric);
  }
  return report;
}
