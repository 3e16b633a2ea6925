/**
 * Compiled programs: an IR graph lowered to ONNX and loaded into an onnxruntime session. Threads come from the
 * machine (or TLAB_THREADS), graph optimizations are on, execution providers come from TLAB_EXECUTION_PROVIDERS.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { executionProvidersSetting, ortProfileSetting, threadsSetting } from '../../util/env.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import type { Graph, Value } from '../ir/graph.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import { encodeModel } from '../onnx/encode.ts';
import { lowerGraph } from '../onnx/lower.ts';
import {
  DEFAULT_IR_VERSION,
  DEFAULT_OPSET,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from '../onnx/model.ts';
import type { HostTensor } from '../tensor.ts';
import { fromOrtTensor, toOrtTensor } from './ort-tensor.ts';
import '../ops/all.ts';

export interface SessionConfig {
  threads?: number;
  executionProviders?: string[];
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimized graph here (debugging fusions). */
  optimizedModelPath?: string;
}

export function defaultSessionConfig(): Required<Omit<SessionConfig, 'optimizedModelPath'>> {
  const threads = threadsSetting() ?? availableParallelism();
  return { threads, executionProviders: executionProvidersSetting(), optimization: 'all' };
}

/** Whether any node of the graph (or of a subgraph, e.g. a Loop body) is in `domain`. */
function usesDomain(graph: OnnxGraph, domain: string): boolean {
  return graph.nodes.some(
    (n) =>
      n.domain === domain || (n.attrs ?? []).some((a) => a.kind === 'graph' && usesDomain(a.value, domain)),
  );
}

export function wrapModel(graph: OnnxGraph, metadata?: Record<string, string>): OnnxModel {
  return {
    irVersion: DEFAULT_IR_VERSION,
    // onnxruntime's contrib ops (MatMulNBits, MatMulBnb4 for 4-bit weights) need their domain imported.
    opsets: [
      { domain: '', version: DEFAULT_OPSET },
      ...(usesDomain(graph, 'com.microsoft') ? [{ domain: 'com.microsoft', version: 1 }] : []),
    ],
    producerName: 'transferlab',
    producerVersion: '0.1.0',
    graph,
    metadata,
  };
}

/** `model` is the encoded ModelProto, or the path of a model file (external data next to it). */
export async function createSession(
  bytes: Uint8Array | string,
  config: SessionConfig = {},
): Promise<ort.InferenceSession> {
  const d = defaultSessionConfig();
  const profile = ortProfileSetting();
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: config.threads ?? d.threads,
    interOpNumThreads: 1,
    executionProviders: config.executionProviders ?? d.executionProviders,
    graphOptimizationLevel: config.optimization ?? d.optimization,
    logSeverityLevel: 3,
    ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
  };
  if (config.optimizedModelPath) options.optimizedModelFilePath = config.optimizedModelPath;
  try {
    return await (typeof bytes === 'string'
      ? ort.InferenceSession.create(bytes, options)
      : ort.InferenceSession.create(bytes, options));
  } catch (error) {
    throw new TlabError(
      `onnxruntime rejected the compiled graph: ${(error as Error).message.split('\n')[0]}`,
      String(error),
    );
  }
}

/**
 * Models whose initializers exceed this go through a file with external data: a protobuf message cannot exceed
 * 2 GiB, and a multi-billion-parameter model's frozen weights (even 4-bit) can.
 */
export const INLINE_WEIGHTS_LIMIT = 1.5 * 2 ** 30;

function initializerBytes(graph: OnnxGraph): number {
  let n = 0;
  for (const t of graph.initializers) n += t.raw?.byteLength ?? 0;
  for (const node of graph.nodes)
    for (const a of node.attrs ?? []) if (a.kind === 'graph') n += initializerBytes(a.value);
  return n;
}

/**
 * A session for a model of any size: the encoded bytes when its weights fit a protobuf, else a temporary folder
 * holding model.onnx and page-aligned external data (onnxruntime maps or reads it while loading; the folder is
 * removed once the session exists).
 */
export async function createModelSession(
  model: OnnxModel,
  config: SessionConfig = {},
  inlineLimit = INLINE_WEIGHTS_LIMIT,
): Promise<ort.InferenceSession> {
  if (initializerBytes(model.graph) <= inlineLimit) return createSession(encodeModel(model), config);
  const dir = mkdtempSync(join(tmpdir(), 'tlab-model-'));
  try {
    const file = 'model.onnx.data';
    const fd = openSync(join(dir, file), 'w');
    let offset = 0;
    const external = (t: OnnxTensor): OnnxTensor => {
      if (!t.raw || t.raw.byteLength < 4096) return t;
      offset += (4096 - (offset % 4096)) % 4096;
      writeSync(fd, t.raw, 0, t.raw.byteLength, offset);
      const moved = {
        name: t.name,
        dtype: t.dtype,
        dims: t.dims,
        external: { location: file, offset, length: t.raw.byteLength },
      };
      offset += t.raw.byteLength;
      return moved;
    };
    const graphOf = (g: OnnxGraph): OnnxGraph => ({
      ...g,
      initializers: g.initializers.map(external),
      nodes: g.nodes.map(
        (n): OnnxNode =>
          n.attrs?.some((a) => a.kind === 'graph')
            ? {
                ...n,
                attrs: n.attrs.map((a) => (a.kind === 'graph' ? { ...a, value: graphOf(a.value) } : a)),
              }
            : n,
      ),
    });
    let moved: OnnxModel;
    try {
      moved = { ...model, graph: graphOf(model.graph) };
    } finally {
      closeSync(fd);
    }
    writeFileSync(join(dir, 'model.onnx'), encodeModel(moved));
    return await createSession(join(dir, 'model.onnx'), config);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface CompileOptions extends SessionConfig {
  outputs: Readonly<Record<string, Value>>;
  /** Graph inputs frozen to this data (become initializers held by the session). */
  bind?: ReadonlyMap<string, HostTensor>;
  name?: string;
}

/** A loaded ONNX program with typed feeds and fetches. */
export class Program {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly model: OnnxModel,
    readonly inputTypes: ReadonlyMap<string, { dtype: Value['dtype']; shape: readonly number[] }>,
    readonly outputNames: readonly string[],
  ) {}

  static async compile(graph: Graph, options: CompileOptions): Promise<Program> {
    const onnx = lowerGraph(graph, { outputs: options.outputs, bind: options.bind, name: options.name });
    const model = wrapModel(onnx);
    const session = await createModelSession(model, options);
    const types = new Map<string, { dtype: Value['dtype']; shape: readonly number[] }>();
    for (const info of onnx.inputs)
      types.set(info.name, { dtype: info.dtype!, shape: info.shape as number[] });
    return new Program(session, model, types, Object.keys(options.outputs));
  }

  get inputNames(): string[] {
    return [...this.inputTypes.keys()];
  }

  /** Runs the program. Every graph input must be fed with its declared dtype and shape. */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    fetch?: readonly string[],
  ): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, type] of this.inputTypes) {
      const t = feeds[name];
      if (!t) {
        throw new TlabError(
          `missing input '${name}' (${type.dtype}${formatShape(type.shape)})`,
          `inputs: ${validChoices(this.inputTypes.keys())}`,
        );
      }
      if (t.dtype !== type.dtype || !sameShape(t.shape, type.shape)) {
        throw new TlabError(
          `input '${name}': got ${t.dtype}${formatShape(t.shape)}, the program expects ${type.dtype}${formatShape(type.shape)}`,
        );
      }
      ortFeeds[name] = toOrtTensor(name, t);
    }
    const names = fetch ?? this.outputNames;
    const result = await this.session.run(ortFeeds, names as string[]);
    const out: Record<string, HostTensor> = {};
    for (const name of names) out[name] = fromOrtTensor(name, result[name]);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
