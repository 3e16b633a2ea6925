/**
 * Compiled programs: an IR graph lowered to ONNX and loaded into an onnxruntime session. Threads come from the
 * machine (or TLAB_THREADS), graph optimizations are on, execution providers come from TLAB_EXECUTION_PROVIDERS.
 */
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { executionProvidersSetting, ortProfileSetting, threadsSetting } from '../../util/env.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import type { Graph, Value } from '../ir/graph.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import { encodeModel } from '../onnx/encode.ts';
import { lowerGraph } from '../onnx/lower.ts';
import { DEFAULT_IR_VERSION, DEFAULT_OPSET, type OnnxGraph, type OnnxModel } from '../onnx/model.ts';
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
      n.domain === domain ||
      (n.attrs ?? []).some((a) => a.kind === 'graph' && usesDomain(a.value, domain)),
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

export async function createSession(
  bytes: Uint8Array,
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
    return await ort.InferenceSession.create(bytes, options);
  } catch (error) {
    throw new TlabError(
      `onnxruntime rejected the compiled graph: ${(error as Error).message.split('\n')[0]}`,
      String(error),
    );
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
    const session = await createSession(encodeModel(model), options);
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
