/**
 * Inference programs of one model and one set of weights, compiled once per input shape and kept. Graph shapes
 * are static, so callers pick a key (batch, length, what is fetched) and a builder; weights become initializers
 * held by each session.
 */
import { Graph, type Value } from '../engine/ir/graph.ts';
import { formatShape, sameShape } from '../engine/ir/shape.ts';
import { type CompileOptions, Program, type SessionConfig } from '../engine/runtime/session.ts';
import { type HostTensor, toFloat32, toFloat64 } from '../engine/tensor.ts';
import type { DecoderLm } from '../models/types.ts';
import { ParamBuilder, type ParamSpec } from '../nn/module.ts';
import { TlabError, validChoices } from '../util/errors.ts';

/** Builds a program's outputs on a fresh graph; parameters are declared through `pb`. */
export type ProgramBuilder = (graph: Graph, pb: ParamBuilder) => Readonly<Record<string, Value>>;

export class ModelPrograms {
  private readonly programs = new Map<string, Promise<Program>>();
  /** Weights converted to the dtype the model declares, converted once per name. */
  private readonly converted = new Map<string, HostTensor>();

  constructor(
    readonly model: DecoderLm,
    readonly weights: ReadonlyMap<string, HostTensor>,
    readonly session: SessionConfig = {},
  ) {}

  /** The program for `key`, built and compiled the first time it is asked for. */
  get(key: string, build: ProgramBuilder): Promise<Program> {
    let program = this.programs.get(key);
    if (!program) {
      program = this.compile(key, build);
      this.programs.set(key, program);
      // A failed compile must not poison the cache.
      program.catch(() => this.programs.delete(key));
    }
    return program;
  }

  /** Number of compiled (or compiling) programs. */
  get size(): number {
    return this.programs.size;
  }

  async release(): Promise<void> {
    const all = [...this.programs.values()];
    this.programs.clear();
    for (const p of all) await (await p.catch(() => null))?.release();
  }

  private async compile(key: string, build: ProgramBuilder): Promise<Program> {
    const graph = new Graph();
    const pb = new ParamBuilder(graph);
    const outputs = build(graph, pb);
    const options: CompileOptions = {
      ...this.session,
      outputs,
      bind: this.bind(pb.specs.values()),
      name: key,
    };
    return Program.compile(graph, options);
  }

  /** The weights each declared parameter needs, checked by name, shape and dtype. */
  private bind(specs: Iterable<ParamSpec>): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    const missing: string[] = [];
    for (const spec of specs) {
      let t = this.converted.get(spec.name) ?? this.weights.get(spec.name);
      if (!t) {
        missing.push(spec.name);
        continue;
      }
      if (!sameShape(t.shape, spec.shape)) {
        throw new TlabError(
          `weights: '${spec.name}' is ${formatShape(t.shape)}, the ${this.model.modelType} model expects ${formatShape(spec.shape)}`,
        );
      }
      if (t.dtype !== spec.dtype) {
        if (spec.dtype === 'float32') t = toFloat32(t);
        else if (spec.dtype === 'float64') t = toFloat64(t);
        else throw new TlabError(`weights: '${spec.name}' is ${t.dtype}, the model expects ${spec.dtype}`);
        this.converted.set(spec.name, t);
      }
      out.set(spec.name, t);
    }
    if (missing.length > 0) {
      throw new TlabError(
        `weights: ${missing.length} parameter(s) of the ${this.model.modelType} model are missing, first '${missing[0]}'`,
        `missing: ${validChoices(missing)}; present: ${validChoices(this.weights.keys())}`,
      );
    }
    return out;
  }
}

/** n rounded up to a multiple of `step` but not past `cap` (never below n), so similar lengths share a program. */
export function bucketLength(n: number, step: number, cap: number): number {
  return Math.max(n, Math.min(Math.ceil(n / step) * step, cap));
}
