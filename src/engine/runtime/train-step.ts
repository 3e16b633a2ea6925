/**
 * Compiles a training step — forward, backward, clipping and the optimizer update — into one ONNX program.
 * Trainable parameters and optimizer state are graph inputs/outputs swapped through a ParameterStore; frozen
 * weights are initializers held by the session. With stepsPerRun > 1 the step is wrapped in an ONNX Loop that
 * carries parameters and state across K steps inside one run(), because onnxruntime-node copies every output
 * into fresh JS memory (~1 ms/MB) and has no IOBinding: per-run traffic, not compute, would dominate.
 */
import ort from 'onnxruntime-node';
import { TlabError, validChoices } from '../../util/errors.ts';
import { grad } from '../autodiff/grad.ts';
import type { DType } from '../dtype.ts';
import { type Graph, nodesNeededFor, type TensorType, type Value } from '../ir/graph.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import { encodeModel } from '../onnx/encode.ts';
import { Lowering, lowerGraph, onnxTensor, valueInfo } from '../onnx/lower.ts';
import { attr, type OnnxGraph, type OnnxValueInfo } from '../onnx/model.ts';
import * as T from '../ops/index.ts';
import { applyUpdate, globalNorm, type OptimizerConfig, stateNames } from '../optim/optimizers.ts';
import { allocData, type HostTensor, numel, zeros } from '../tensor.ts';
import { fromOrtTensor, toOrtTensor } from './ort-tensor.ts';
import type { ParameterStore } from './param-store.ts';
import { createSession, type SessionConfig, wrapModel } from './session.ts';

export interface ParamGroup {
  name: string;
  /** Parameter (graph input) names in this group. */
  params: readonly string[];
  weightDecay: number;
}

export interface TrainStepSpec extends SessionConfig {
  graph: Graph;
  loss: Value;
  /** Graph inputs that are trained. */
  trainable: readonly Value[];
  /** Graph inputs frozen to data (become initializers). */
  frozen?: ReadonlyMap<string, HostTensor>;
  optimizer: OptimizerConfig;
  /** Learning-rate groups; default: one group with the optimizer's weight decay on every parameter. */
  groups?: readonly ParamGroup[];
  /** Global gradient-norm clipping threshold; null or undefined disables clipping. */
  clipNorm?: number | null;
  /** Optimizer steps per onnxruntime run (ONNX Loop when > 1). */
  stepsPerRun?: number;
  /** Extra scalar outputs reported per step (accuracy, token counts...). */
  metrics?: Readonly<Record<string, Value>>;
}

export interface StepFeed {
  /** The step's batch: every non-parameter graph input. */
  data: Readonly<Record<string, HostTensor>>;
  /** Learning rate per group, in group order. */
  lr: readonly number[];
}

export interface StepResult {
  losses: number[];
  gradNorms: number[];
  metrics: Record<string, number[]>;
}

const PER_STEP = ['optim.lr', 'optim.t'];

export class TrainStep {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly stepsPerRun: number,
    readonly paramNames: readonly string[],
    readonly stateNames: readonly string[],
    readonly stateTypes: ReadonlyMap<string, TensorType>,
    readonly dataInputs: ReadonlyMap<string, TensorType>,
    readonly groups: readonly ParamGroup[],
    readonly metricNames: readonly string[],
    private readonly floatType: DType,
  ) {}

  static async compile(spec: TrainStepSpec): Promise<TrainStep> {
    const { graph, loss, optimizer } = spec;
    const k = spec.stepsPerRun ?? 1;
    if (!Number.isInteger(k) || k < 1)
      throw new TlabError(`stepsPerRun must be a positive integer, got ${k}`);
    if (loss.size !== 1) throw new TlabError(`training loss must be a scalar, got ${loss}`);
    const floatType = loss.dtype;
    const paramNames = spec.trainable.map((v) => {
      if (v.inputName === null) throw new TlabError(`trainable ${v} is not a graph input`);
      return v.inputName;
    });
    const groups = spec.groups ?? [
      {
        name: 'default',
        params: paramNames,
        weightDecay: optimizer.weightDecay ?? (optimizer.kind === 'adamw' ? 0.01 : 0),
      },
    ];
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const p of g.params) {
        if (groupOf.has(p)) throw new TlabError(`parameter '${p}' is in two optimizer groups`);
        groupOf.set(p, i);
      }
    });
    for (const p of paramNames) {
      if (!groupOf.has(p))
        throw new TlabError(
          `trainable parameter '${p}' is in no optimizer group`,
          `groups: ${validChoices(groups.map((g) => g.name))}`,
        );
    }

    const lr = graph.input('optim.lr', floatType, [groups.length]);
    const t = graph.input('optim.t', floatType, []);
    const grads = grad(loss, spec.trainable);
    const { norm, squares, scale } = globalNorm(grads, spec.clipNorm ?? null);
    const outputs: Record<string, Value> = { loss, grad_norm: norm };
    for (const [name, v] of Object.entries(spec.metrics ?? {})) outputs[`metric.${name}`] = v;
    const allStateNames: string[] = [];
    const stateTypes = new Map<string, TensorType>();
    spec.trainable.forEach((param, i) => {
      const name = paramNames[i];
      const group = groupOf.get(name)!;
      const names = stateNames(optimizer, name);
      const state = names.map((s) => graph.input(s, param.dtype, param.shape));
      for (const s of names) stateTypes.set(s, { dtype: param.dtype, shape: param.shape });
      allStateNames.push(...names);
      const groupLr = T.reshape(T.slice(lr, [0], [group], [group + 1]), []);
      const upd = graph.withScope(`optim.${name}`, () =>
        applyUpdate(optimizer, {
          param,
          grad: grads[i],
          gradSq: squares[i],
          gradScale: scale,
          state,
          lr: groupLr,
          t,
          weightDecay: groups[group].weightDecay,
        }),
      );
      outputs[`new.${name}`] = upd.param;
      upd.state.forEach((s, j) => {
        outputs[`new.${names[j]}`] = s;
      });
    });

    const frozen = spec.frozen ?? new Map<string, HostTensor>();
    const carried = new Set([...paramNames, ...allStateNames]);
    const dataInputs = new Map<string, TensorType>();
    const needed = nodesNeededFor(graph, Object.values(outputs));
    const used = new Set<Value>();
    for (const n of needed) for (const v of n.inputs) used.add(v);
    for (const [name, v] of graph.inputs) {
      if (carried.has(name) || frozen.has(name) || PER_STEP.includes(name)) continue;
      if (used.has(v)) dataInputs.set(name, { dtype: v.dtype, shape: v.shape });
    }

    const onnx =
      k === 1
        ? lowerGraph(graph, { outputs, bind: frozen, name: 'train_step', keepUnusedInputs: false })
        : lowerLoop(graph, outputs, frozen, paramNames, allStateNames, [...dataInputs.keys(), ...PER_STEP]);
    const session = await createSession(encodeModel(wrapModel(onnx)), spec);
    return new TrainStep(
      session,
      k,
      paramNames,
      allStateNames,
      stateTypes,
      dataInputs,
      groups,
      Object.keys(spec.metrics ?? {}),
      floatType,
    );
  }

  /** Adds zero-initialised optimizer state for every parameter that has none in the store. */
  initState(store: ParameterStore): void {
    for (const name of this.stateNames) {
      if (!store.has(name)) {
        const type = this.stateTypes.get(name)!;
        store.set(name, zeros(type.dtype, type.shape));
      }
    }
  }

  /**
   * Runs up to stepsPerRun optimizer steps. `stepsDone` is the number of updates applied before (for bias
   * correction). On success the store holds the new parameters and state; on failure it is unchanged.
   */
  async run(store: ParameterStore, steps: readonly StepFeed[], stepsDone: number): Promise<StepResult> {
    if (steps.length === 0 || steps.length > this.stepsPerRun) {
      throw new TlabError(`a run takes 1 to ${this.stepsPerRun} steps, got ${steps.length}`);
    }
    for (const s of steps) {
      if (s.lr.length !== this.groups.length) {
        throw new TlabError(
          `learning rates: got ${s.lr.length} values for ${this.groups.length} groups (${this.groups.map((g) => g.name).join(', ')})`,
        );
      }
      for (const [name, type] of this.dataInputs) {
        const t = s.data[name];
        if (!t)
          throw new TlabError(
            `training batch is missing input '${name}'`,
            `inputs: ${validChoices(this.dataInputs.keys())}`,
          );
        if (t.dtype !== type.dtype || !sameShape(t.shape, type.shape)) {
          throw new TlabError(
            `training batch input '${name}': got ${t.dtype}${formatShape(t.shape)}, expected ${type.dtype}${formatShape(type.shape)}`,
          );
        }
      }
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of [...this.paramNames, ...this.stateNames])
      feeds[name] = toOrtTensor(name, store.get(name));
    const lrs = (s: StepFeed) => this.floatTensor([s.lr.length], s.lr);
    if (this.stepsPerRun === 1) {
      for (const [name, t] of Object.entries(steps[0].data))
        if (this.dataInputs.has(name)) feeds[name] = toOrtTensor(name, t);
      feeds['optim.lr'] = toOrtTensor('optim.lr', lrs(steps[0]));
      feeds['optim.t'] = toOrtTensor('optim.t', this.floatTensor([], [stepsDone + 1]));
    } else {
      for (const [name, type] of this.dataInputs)
        feeds[`steps.${name}`] = toOrtTensor(
          name,
          stack(
            steps.map((s) => s.data[name]),
            type,
          ),
        );
      const lrType = { dtype: this.floatType, shape: [this.groups.length] };
      feeds['steps.optim.lr'] = toOrtTensor('lr', stack(steps.map(lrs), lrType));
      feeds['steps.optim.t'] = toOrtTensor(
        't',
        this.floatTensor(
          [steps.length],
          steps.map((_, i) => stepsDone + i + 1),
        ),
      );
      feeds['loop.trip_count'] = new ort.Tensor('int64', BigInt64Array.of(BigInt(steps.length)), []);
    }
    // Inputs the compiled graph does not read (e.g. the step count for plain SGD) were pruned by lowering.
    for (const name of Object.keys(feeds)) if (!this.session.inputNames.includes(name)) delete feeds[name];
    const out = await this.session.run(feeds);
    const values = (name: string) => Array.from(fromOrtTensor(name, out[name]).data as Float32Array, Number);
    const result: StepResult = { losses: values('loss'), gradNorms: values('grad_norm'), metrics: {} };
    for (const m of this.metricNames) result.metrics[m] = values(`metric.${m}`);
    for (const name of [...this.paramNames, ...this.stateNames])
      store.set(name, fromOrtTensor(name, out[`new.${name}`]));
    return result;
  }

  private floatTensor(shape: number[], values: readonly number[]): HostTensor {
    const data = allocData(this.floatType, values.length);
    (data as Float32Array).set(values);
    return { dtype: this.floatType, shape, data };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function stack(tensors: readonly HostTensor[], type: TensorType): HostTensor {
  const n = numel(type.shape);
  const data = allocData(type.dtype, n * tensors.length);
  tensors.forEach((t, i) => {
    (data as Float32Array).set(t.data as Float32Array, i * n);
  });
  return { dtype: type.dtype, shape: [tensors.length, ...type.shape], data };
}

/**
 * The step graph inside an ONNX Loop: parameters and optimizer state are loop-carried, each step's inputs are
 * gathered from stacked [k, ...] tensors by the iteration number, loss/grad-norm/metrics are scan outputs.
 */
function lowerLoop(
  graph: Graph,
  outputs: Record<string, Value>,
  frozen: ReadonlyMap<string, HostTensor>,
  paramNames: readonly string[],
  stateNamesList: readonly string[],
  perStep: readonly string[],
): OnnxGraph {
  const carried = [...paramNames, ...stateNamesList];
  const body = new Lowering(graph, 'b/');
  const bodyInputs: OnnxValueInfo[] = [
    { name: 'b/iter', dtype: 'int64', shape: [] },
    { name: 'b/cond', dtype: 'bool', shape: [] },
  ];
  for (const name of carried) {
    const v = graph.inputs.get(name)!;
    body.setName(v, `b/in/${name}`);
    bodyInputs.push(valueInfo(`b/in/${name}`, v));
  }
  for (const name of perStep) {
    const v = graph.inputs.get(name)!;
    body.node('Gather', [`steps.${name}`, 'b/iter'], [`b/feed/${name}`], [attr.int('axis', 0)]);
    body.setName(v, `b/feed/${name}`);
  }
  const scanNames = Object.keys(outputs).filter((n) => !n.startsWith('new.'));
  const bodyOutNames = new Map<string, string>();
  for (const name of [...carried.map((c) => `new.${c}`), ...scanNames]) {
    const v = outputs[name];
    const outName = `b/out/${name}`;
    bodyOutNames.set(name, outName);
    if (v.producer) body.setName(v, outName);
  }
  for (const node of nodesNeededFor(graph, Object.values(outputs))) body.emitNode(node);
  body.node('Identity', ['b/cond'], ['b/cond_out']);
  const bodyOutputs: OnnxValueInfo[] = [{ name: 'b/cond_out', dtype: 'bool', shape: [] }];
  for (const [name, outName] of bodyOutNames) {
    const v = outputs[name];
    if (body.name(v) !== outName) body.node('Identity', [body.name(v)], [outName]);
    bodyOutputs.push(valueInfo(outName, v));
  }
  const bodyGraph: OnnxGraph = {
    name: 'train_step_body',
    nodes: body.nodes,
    initializers: body.initializers,
    inputs: bodyInputs,
    outputs: bodyOutputs,
  };

  const inputs: OnnxValueInfo[] = [{ name: 'loop.trip_count', dtype: 'int64', shape: [] }];
  for (const name of carried) inputs.push(valueInfo(name, graph.inputs.get(name)!));
  for (const name of perStep) {
    const v = graph.inputs.get(name)!;
    inputs.push({ name: `steps.${name}`, dtype: v.dtype, shape: ['steps', ...v.shape] });
  }
  const initializers = [...frozen]
    .filter(([name]) => graph.inputs.has(name))
    .map(([name, t]) => onnxTensor(name, t));
  const loopOutputs = [...carried.map((c) => `new.${c}`), ...scanNames];
  const outInfos: OnnxValueInfo[] = loopOutputs.map((name) => {
    const v = outputs[name];
    return name.startsWith('new.')
      ? valueInfo(name, v)
      : { name, dtype: v.dtype, shape: ['steps', ...v.shape] };
  });
  return {
    name: 'train_loop',
    nodes: [
      {
        opType: 'Loop',
        name: 'train_loop',
        inputs: ['loop.trip_count', '', ...carried],
        outputs: loopOutputs,
        attrs: [attr.graph('body', bodyGraph)],
      },
    ],
    initializers,
    inputs,
    outputs: outInfos,
  };
}
