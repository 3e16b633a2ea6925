/**
 * onnxruntime sessions for linalg's fixed programs, created once per program and reused for every shape.
 * ORT's float64 Gemm runs at ~70 GFLOP/s on 2 cores here, far beyond what a JS loop reaches.
 */
import ort from 'onnxruntime-node';
import { encodeModel, type NodeSpec, type ValueSpec } from './onnx-model.ts';

export interface Program {
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

function threads(): number {
  const env = Number(process.env.TLAB_LINALG_THREADS);
  return Number.isInteger(env) && env > 0 ? env : 0; // 0 lets ORT use every core
}

export function session(key: string, program: () => Program): Promise<ort.InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    const p = program();
    s = ort.InferenceSession.create(encodeModel(p.nodes, p.inputs, p.outputs), {
      intraOpNumThreads: threads(),
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
  | { type: 'int64'; data: BigInt64Array; dims: number[] }
>;

export async function run(
  key: string,
  program: () => Program,
  feed: Feed,
): Promise<Record<string, ort.Tensor>> {
  const s = await session(key, program);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(feed)) feeds[name] = new ort.Tensor(v.type, v.data, v.dims);
  return (await s.run(feeds)) as Record<string, ort.Tensor>;
}
