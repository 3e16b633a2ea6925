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
import { Graph, nodesNeededFor, type TensorType, type Value } from '../ir/graph.ts';
import { formatShape, sameShape } from '../ir/shape.ts';
import { Lowering, lowerGraph, onnxTensor, valueInfo } from '../onnx/lower.ts';
import { attr, type OnnxGraph, type OnnxValueInfo } from '../onnx/model.ts';
import * as T from '../ops/index.ts';
import { applyUpdate, globalNorm, type OptimizerConfig, stateNames } from '../optim/optimizers.ts';
import { allocData, type HostTensor, numel, zeros } from '../tensor.ts';
import { fromOrtTensor, toOrtTensor } from './ort-tensor.ts';
import type { ParameterStore } from './param-store.ts';
import { createModelSession, type SessionConfig, wrapModel } from './session.ts';

export interface ParamGroup {
  name: string;
  /** Parameter (graph input) names in this group. */
  params: readonly string[];
  weightDecay: number;
}

export interface TrainStepSpec extends SessionConfig {
  graph: Graph;
  /** The scalar loss to minimise; or give `lossSum` and `count` (loss = lossSum / count). */
  loss?: Value;
  /** Summed loss; with `count`, lets micro-batches combine into the exact mean over the whole batch. */
  lossSum?: Value;
  /** Number of items `lossSum` sums over (tokens, examples); must not depend on trainable parameters. */
  count?: Value;
  /**
   * Micro-batches per optimizer step (gradient accumulation): each step's `micro` feeds run forward and backward
   * one after another, gradients of lossSum are summed on the host, then one update applies Σ grad / Σ count.
   * Needs `lossSum` and `count`; metrics should then be sums so they add across micro-batches.
   */
  microBatches?: number;
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
  data?: Readonly<Record<string, HostTensor>>;
  /** With microBatches > 1: one batch per micro-batch. */
  micro?: readonly Readonly<Record<string, HostTensor>>[];
  /** Learning rate per group, in group order. */
  lr: readonly number[];
}

export interface StepResult {
  losses: number[];
  gradNorms: number[];
  /** Per step: how many updated parameter and optimizer-state values are not finite (computed in the graph). */
  nonFinite: number[];
  metrics: Record<string, number[]>;
  /**
   * False when a loss or gradient norm was not finite, or an update overflowed a parameter or optimizer state
   * (finite gradients with a learning rate too large): the store was left as it was before the run.
   */
  committed: boolean;
}

/** What the trainer needs from a compiled step, whichever way it runs. */
export interface Stepper {
  readonly paramNames: readonly string[];
  readonly stateNames: readonly string[];
  /** Type of each optimizer state tensor (a checkpoint's must match to be resumed). */
  readonly stateTypes: ReadonlyMap<string, TensorType>;
  readonly groups: readonly ParamGroup[];
  readonly stepsPerRun: number;
  initState(store: ParameterStore): void;
  run(store: ParameterStore, steps: readonly StepFeed[], stepsDone: number): Promise<StepResult>;
  release(): Promise<void>;
}

const PER_STEP = ['optim.lr', 'optim.t'];

interface GroupPlan {
  groups: readonly ParamGroup[];
  groupOf: ReadonlyMap<string, number>;
}

function planGroups(paramNames: readonly string[], spec: TrainStepSpec): GroupPlan {
  const { optimizer } = spec;
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
    if (!groupOf.has(p)) {
      throw new TlabError(
        `trainable parameter '${p}' is in no optimizer group`,
        `groups: ${validChoices(groups.map((g) => g.name))}`,
      );
    }
  }
  return { groups, groupOf };
}

interface UpdateGraph {
  outputs: Record<string, Value>;
  stateNames: string[];
  stateTypes: Map<string, TensorType>;
}

/**
 * Appends norm, clipping and the optimizer update of every parameter; outputs `grad_norm`, `new.*` and
 * `nonfinite` (the count of non-finite values in the new parameters and state: the loss and the gradient norm
 * come from the weights before the update, so they cannot tell that an update overflowed).
 */
function appendUpdates(
  graph: Graph,
  params: readonly Value[],
  grads: readonly Value[],
  spec: TrainStepSpec,
  plan: GroupPlan,
): UpdateGraph {
  const floatType = params[0].dtype;
  const lr = graph.input('optim.lr', floatType, [plan.groups.length]);
  const t = graph.input('optim.t', floatType, []);
  const { norm, squares, scale } = globalNorm(grads, spec.clipNorm ?? null);
  const outputs: Record<string, Value> = { grad_norm: norm };
  const names: string[] = [];
  const types = new Map<string, TensorType>();
  params.forEach((param, i) => {
    const name = param.inputName!;
    const group = plan.groupOf.get(name)!;
    const stateList = stateNames(spec.optimizer, name);
    const state = stateList.map((n) => graph.input(n, param.dtype, param.shape));
    for (const n of stateList) types.set(n, { dtype: param.dtype, shape: param.shape });
    names.push(...stateList);
    const groupLr = T.reshape(T.slice(lr, [0], [group], [group + 1]), []);
    const upd = graph.withScope(`optim.${name}`, () =>
      applyUpdate(spec.optimizer, {
        param,
        grad: grads[i],
        gradSq: squares[i],
        gradScale: scale,
        state,
        lr: groupLr,
        t,
        weightDecay: plan.groups[group].weightDecay,
      }),
    );
    outputs[`new.${name}`] = upd.param;
    upd.state.forEach((v, j) => {
      outputs[`new.${stateList[j]}`] = v;
    });
  });
  let bad: Value | null = null;
  for (const [name, v] of Object.entries(outputs)) {
    if (!name.startsWith('new.')) continue;
    const count = T.reduceSum(T.cast(T.logicalOr(T.isNan(v), T.isInfinite(v)), floatType));
    bad = bad ? T.add(bad, count) : count;
  }
  outputs.nonfinite = bad!;
  return { outputs, stateNames: names, stateTypes: types };
}

function paramNamesOf(spec: TrainStepSpec): string[] {
  if (spec.trainable.length === 0)
    throw new TlabError('nothing to train: no trainable parameters were selected');
  return spec.trainable.map((v) => {
    if (v.inputName === null) throw new TlabError(`trainable ${v} is not a graph input`);
    return v.inputName;
  });
}

/** Graph inputs (other than parameters, state and per-step optimizer inputs) the outputs depend on. */
function batchInputs(
  graph: Graph,
  outputs: Record<string, Value>,
  exclude: ReadonlySet<string>,
): Map<string, TensorType> {
  const used = new Set<Value>(Object.values(outputs));
  for (const n of nodesNeededFor(graph, Object.values(outputs))) for (const v of n.inputs) used.add(v);
  const out = new Map<string, TensorType>();
  for (const [name, v] of graph.inputs) {
    if (!exclude.has(name) && !PER_STEP.includes(name) && used.has(v))
      out.set(name, { dtype: v.dtype, shape: v.shape });
  }
  return out;
}

function checkBatch(
  batch: Readonly<Record<string, HostTensor>> | undefined,
  inputs: ReadonlyMap<string, TensorType>,
): Readonly<Record<string, HostTensor>> {
  if (!batch) throw new TlabError('a training step has no batch');
  for (const [name, type] of inputs) {
    const t = batch[name];
    if (!t)
      throw new TlabError(
        `training batch is missing input '${name}'`,
        `inputs: ${validChoices(inputs.keys())}`,
      );
    if (t.dtype !== type.dtype || !sameShape(t.shape, type.shape)) {
      throw new TlabError(
        `training batch input '${name}': got ${t.dtype}${formatShape(t.shape)}, expected ${type.dtype}${formatShape(type.shape)}`,
      );
    }
  }
  return batch;
}

function scalarTensor(dtype: DType, shape: number[], values: readonly number[]): HostTensor {
  const data = allocData(dtype, values.length);
  (data as Float32Array).set(values);
  return { dtype, shape, data };
}

function allFinite(values: readonly number[]): boolean {
  return values.every(Number.isFinite);
}

/** What both kinds of compiled step know about their inputs and outputs. */
interface StepLayout {
  paramNames: readonly string[];
  stateNames: readonly string[];
  stateTypes: ReadonlyMap<string, TensorType>;
  dataInputs: ReadonlyMap<string, TensorType>;
  groups: readonly ParamGroup[];
  metricNames: readonly string[];
  floatType: DType;
}

function layoutOf(
  spec: TrainStepSpec,
  paramNames: string[],
  upd: UpdateGraph,
  dataInputs: Map<string, TensorType>,
  plan: GroupPlan,
  floatType: DType,
): StepLayout {
  return {
    paramNames,
    stateNames: upd.stateNames,
    stateTypes: upd.stateTypes,
    dataInputs,
    groups: plan.groups,
    metricNames: Object.keys(spec.metrics ?? {}),
    floatType,
  };
}

abstract class StepperBase implements Stepper {
  abstract readonly stepsPerRun: number;
  readonly paramNames: readonly string[];
  readonly stateNames: readonly string[];
  readonly dataInputs: ReadonlyMap<string, TensorType>;
  readonly groups: readonly ParamGroup[];
  readonly stateTypes: ReadonlyMap<string, TensorType>;
  protected readonly metricNames: readonly string[];
  protected readonly floatType: DType;

  constructor(layout: StepLayout) {
    ({
      paramNames: this.paramNames,
      stateNames: this.stateNames,
      stateTypes: this.stateTypes,
      dataInputs: this.dataInputs,
      groups: this.groups,
      metricNames: this.metricNames,
      floatType: this.floatType,
    } = layout);
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

  /** Moves the run's new parameters and state into the store, unless a loss, norm or updated value is not finite. */
  protected commit(
    store: ParameterStore,
    result: StepResult,
    fetch: (name: string) => HostTensor,
  ): StepResult {
    if (allFinite(result.losses) && allFinite(result.gradNorms) && result.nonFinite.every((n) => n === 0)) {
      for (const name of [...this.paramNames, ...this.stateNames]) store.set(name, fetch(`new.${name}`));
      result.committed = true;
    }
    return result;
  }

  abstract run(store: ParameterStore, steps: readonly StepFeed[], stepsDone: number): Promise<StepResult>;
  abstract release(): Promise<void>;
}

export class TrainStep extends StepperBase {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly stepsPerRun: number,
    layout: StepLayout,
  ) {
    super(layout);
  }

  /** Compiles the step; with microBatches > 1 returns an accumulating stepper (two programs). */
  static async compile(
    spec: TrainStepSpec,
  ): Promise<Stepper & { dataInputs: ReadonlyMap<string, TensorType> }> {
    if ((spec.microBatches ?? 1) > 1) return AccumulatingTrainStep.compile(spec);
    const { graph } = spec;
    const k = spec.stepsPerRun ?? 1;
    if (!Number.isInteger(k) || k < 1)
      throw new TlabError(`stepsPerRun must be a positive integer, got ${k}`);
    const loss = lossOf(spec);
    const paramNames = paramNamesOf(spec);
    const plan = planGroups(paramNames, spec);
    const grads = grad(loss, spec.trainable);
    const upd = appendUpdates(graph, spec.trainable, grads, spec, plan);
    const outputs: Record<string, Value> = { loss, ...upd.outputs };
    for (const [name, v] of Object.entries(spec.metrics ?? {})) outputs[`metric.${name}`] = v;
    const frozen = spec.frozen ?? new Map<string, HostTensor>();
    const dataInputs = batchInputs(
      graph,
      outputs,
      new Set([...paramNames, ...upd.stateNames, ...frozen.keys()]),
    );
    const onnx =
      k === 1
        ? lowerGraph(graph, { outputs, bind: frozen, name: 'train_step', keepUnusedInputs: false })
        : lowerLoop(graph, outputs, frozen, paramNames, upd.stateNames, [...dataInputs.keys(), ...PER_STEP]);
    const session = await createModelSession(wrapModel(onnx), spec);
    return new TrainStep(session, k, layoutOf(spec, paramNames, upd, dataInputs, plan, loss.dtype));
  }

  /**
   * Runs up to stepsPerRun optimizer steps. `stepsDone` is the number of updates applied before (for bias
   * correction). The store receives the new parameters and state only if every loss, gradient norm and updated
   * value is finite.
   */
  async run(store: ParameterStore, steps: readonly StepFeed[], stepsDone: number): Promise<StepResult> {
    if (steps.length === 0 || steps.length > this.stepsPerRun) {
      throw new TlabError(`a run takes 1 to ${this.stepsPerRun} steps, got ${steps.length}`);
    }
    for (const s of steps) {
      checkLrs(s, this.groups);
      checkBatch(s.data, this.dataInputs);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of [...this.paramNames, ...this.stateNames])
      feeds[name] = toOrtTensor(name, store.get(name));
    const lrs = (s: StepFeed) => scalarTensor(this.floatType, [s.lr.length], s.lr);
    if (this.stepsPerRun === 1) {
      for (const name of this.dataInputs.keys()) feeds[name] = toOrtTensor(name, steps[0].data![name]);
      feeds['optim.lr'] = toOrtTensor('optim.lr', lrs(steps[0]));
      feeds['optim.t'] = toOrtTensor('optim.t', scalarTensor(this.floatType, [], [stepsDone + 1]));
    } else {
      for (const [name, type] of this.dataInputs) {
        feeds[`steps.${name}`] = toOrtTensor(
          name,
          stack(
            steps.map((s) => s.data![name]),
            type,
          ),
        );
      }
      const lrType = { dtype: this.floatType, shape: [this.groups.length] };
      feeds['steps.optim.lr'] = toOrtTensor('lr', stack(steps.map(lrs), lrType));
      feeds['steps.optim.t'] = toOrtTensor(
        't',
        scalarTensor(
          this.floatType,
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
    const result: StepResult = {
      losses: values('loss'),
      gradNorms: values('grad_norm'),
      nonFinite: values('nonfinite'),
      metrics: {},
      committed: false,
    };
    for (const m of this.metricNames) result.metrics[m] = values(`metric.${m}`);
    return this.commit(store, result, (name) => fromOrtTensor(name, out[name]));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function lossOf(spec: TrainStepSpec): Value {
  if (spec.loss) {
    if (spec.loss.size !== 1) throw new TlabError(`training loss must be a scalar, got ${spec.loss}`);
    return spec.loss;
  }
  if (!spec.lossSum || !spec.count)
    throw new TlabError('a training step needs `loss`, or `lossSum` and `count`');
  return T.div(spec.lossSum, T.maximum(T.cast(spec.count, spec.lossSum.dtype), 1));
}

function checkLrs(s: StepFeed, groups: readonly ParamGroup[]): void {
  if (s.lr.length !== groups.length) {
    throw new TlabError(
      `learning rates: got ${s.lr.length} values for ${groups.length} groups (${groups.map((g) => g.name).join(', ')})`,
    );
  }
}

/**
 * Gradient accumulation: a forward+backward program runs once per micro-batch (so activations of only one
 * micro-batch are alive at a time), gradients of the summed loss are added on the host, and an update program
 * applies Σ grad / Σ count — the exact mean over the whole batch, however its items split into micro-batches.
 */
class AccumulatingTrainStep extends StepperBase {
  readonly stepsPerRun = 1;

  private constructor(
    private readonly gradProgram: ort.InferenceSession,
    private readonly applyProgram: ort.InferenceSession,
    layout: StepLayout,
  ) {
    super(layout);
  }

  static async compile(spec: TrainStepSpec): Promise<AccumulatingTrainStep> {
    const { graph, lossSum, count } = spec;
    if (!lossSum || !count)
      throw new TlabError('gradient accumulation (microBatches > 1) needs `lossSum` and `count`');
    if ((spec.stepsPerRun ?? 1) !== 1)
      throw new TlabError('microBatches > 1 cannot be combined with stepsPerRun > 1');
    const paramNames = paramNamesOf(spec);
    const plan = planGroups(paramNames, spec);
    const grads = grad(lossSum, spec.trainable);
    const gradOutputs: Record<string, Value> = { loss_sum: lossSum, count: T.cast(count, lossSum.dtype) };
    grads.forEach((g, i) => {
      gradOutputs[`grad.${paramNames[i]}`] = g;
    });
    for (const [name, v] of Object.entries(spec.metrics ?? {})) gradOutputs[`metric.${name}`] = v;
    const frozen = spec.frozen ?? new Map<string, HostTensor>();
    const dataInputs = batchInputs(graph, gradOutputs, new Set([...paramNames, ...frozen.keys()]));
    const gradOnnx = lowerGraph(graph, { outputs: gradOutputs, bind: frozen, name: 'grad_step' });

    const apply = new Graph();
    const params = spec.trainable.map((p) => apply.input(p.inputName!, p.dtype, p.shape));
    const total = apply.input('count', lossSum.dtype, []);
    const denom = T.maximum(total, 1);
    const summed = spec.trainable.map((p) =>
      T.div(apply.input(`grad.${p.inputName}`, p.dtype, p.shape), denom),
    );
    const upd = appendUpdates(apply, params, summed, spec, plan);
    const applyOnnx = lowerGraph(apply, { outputs: upd.outputs, name: 'apply_update' });
    const sessions = await Promise.allSettled([
      createModelSession(wrapModel(gradOnnx), spec),
      createModelSession(wrapModel(applyOnnx), spec),
    ]);
    const failed = sessions.find((r) => r.status === 'rejected');
    if (failed) {
      // The program that did compile is released, not leaked with its native memory.
      for (const r of sessions) if (r.status === 'fulfilled') await r.value.release();
      throw failed.reason;
    }
    const [gradSession, applySession] = sessions.map(
      (r) => (r as PromiseFulfilledResult<ort.InferenceSession>).value,
    );
    return new AccumulatingTrainStep(
      gradSession,
      applySession,
      layoutOf(spec, paramNames, upd, dataInputs, plan, lossSum.dtype),
    );
  }

  async run(store: ParameterStore, steps: readonly StepFeed[], stepsDone: number): Promise<StepResult> {
    if (steps.length !== 1)
      throw new TlabError(`an accumulating step runs one optimizer step at a time, got ${steps.length}`);
    const step = steps[0];
    checkLrs(step, this.groups);
    const micro = step.micro ?? (step.data ? [step.data] : []);
    if (micro.length === 0) throw new TlabError('a training step has no micro-batches');
    const paramFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.paramNames) paramFeeds[name] = toOrtTensor(name, store.get(name));
    const sums = new Map<string, Float32Array | Float64Array>();
    let lossSum = 0;
    let count = 0;
    const metrics: Record<string, number> = Object.fromEntries(this.metricNames.map((m) => [m, 0]));
    for (const batch of micro) {
      checkBatch(batch, this.dataInputs);
      const feeds = { ...paramFeeds };
      for (const name of this.dataInputs.keys()) feeds[name] = toOrtTensor(name, batch[name]);
      const out = await this.gradProgram.run(feeds);
      lossSum += Number(out.loss_sum.data[0]);
      count += Number(out.count.data[0]);
      for (const m of this.metricNames) metrics[m] += Number(out[`metric.${m}`].data[0]);
      for (const name of this.paramNames) {
        const g = out[`grad.${name}`].data as Float32Array | Float64Array;
        const acc = sums.get(name);
        if (!acc) sums.set(name, g);
        else for (let i = 0; i < acc.length; i++) acc[i] += g[i];
      }
    }
    const feeds: Record<string, ort.Tensor> = { ...paramFeeds };
    for (const name of this.stateNames) feeds[name] = toOrtTensor(name, store.get(name));
    for (const [name, acc] of sums)
      feeds[`grad.${name}`] = toOrtTensor(name, {
        dtype: this.floatType,
        shape: store.get(name).shape,
        data: acc,
      });
    feeds.count = toOrtTensor('count', scalarTensor(this.floatType, [], [count]));
    feeds['optim.lr'] = toOrtTensor('optim.lr', scalarTensor(this.floatType, [step.lr.length], step.lr));
    feeds['optim.t'] = toOrtTensor('optim.t', scalarTensor(this.floatType, [], [stepsDone + 1]));
    for (const name of Object.keys(feeds))
      if (!this.applyProgram.inputNames.includes(name)) delete feeds[name];
    const out = await this.applyProgram.run(feeds);
    const loss = lossSum / Math.max(count, 1);
    const gradNorm = Number(out.grad_norm.data[0]);
    const result: StepResult = {
      losses: [loss],
      gradNorms: [gradNorm],
      nonFinite: [Number(out.nonfinite.data[0])],
      metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, [v]])),
      committed: false,
    };
    return this.commit(store, result, (name) => fromOrtTensor(name, out[name]));
  }

  async release(): Promise<void> {
    await Promise.all([this.gradProgram.release(), this.applyProgram.release()]);
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
