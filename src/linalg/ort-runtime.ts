/**
 * onnxruntime sessions for linalg's fixed programs, created once per program and reused for every shape.
 * ORT's float64 Gemm runs at ~70 GFLOP/s on 2 cores here, far beyond what a JS loop reaches. Sessions are created
 * lazily, so setting TLAB_LINALG_THREADS before the first product fixes their thread count (bench/metrics does).
 */
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { linalgThreadsSetting } from '../util/env.ts';
import { encodeModel, type NodeSpec, type ValueSpec } from './onnx-model.ts';

export interface Program {
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** Intra-op threads: TLAB_LINALG_THREADS, else TLAB_THREADS, else every core (as the engine's sessions). */
function threads(): number {
  return linalgThreadsSetting() ?? availableParallelism();
}

export function session(key: string, program: () => Program): Promise<ort.InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    const p = program();
    s = ort.InferenceSession.create(encodeModel(p.nodes, p.inputs, p.outputs), {
      intraOpNumThreads: threads(),
      // Idle pool threads must not spin: linalg alternates between many sessions (each with its own pool) and
      // JS/WebAssembly work, and on 2 cores a spinning thread of the last session stole ~30 ms from a 55 ms Gram.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    sessions.set(key, s);
  }
  return s;
}

export type Feed = Record<
  string,
  | { type: 'float64'; data: Float64Array; dims: number[] }
  | { type: 'float32'; data: Float32Array; dims: number[] }
  | { type: 'int64'; data: BigInt64Array; dims: number[] }
>;

/**
 * Runs a program. Outputs named in `into` are written straight into those arrays (pre-allocated output tensors);
 * that halves the cost of a large output against letting onnxruntime-node copy it into fresh memory.
 */
export async function run(
  key: string,
  program: () => Program,
  feed: Feed,
  into: Record<string, { data: Float64Array; dims: number[] }> = {},
): Promise<Record<string, ort.Tensor>> {
  const s = await session(key, program);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(feed)) feeds[name] = new ort.Tensor(v.type, v.data, v.dims);
  const names = Object.keys(into);
  if (names.length === 0) return (await s.run(feeds)) as Record<string, ort.Tensor>;
  const fetches: Record<string, ort.Tensor | null> = {};
  for (const name of s.outputNames) fetches[name] = null;
  for (const name of names) fetches[name] = new ort.Tensor('float64', into[name].data, into[name].dims);
  return (await s.run(feeds, fetches)) as Record<string, ort.Tensor>;
}
