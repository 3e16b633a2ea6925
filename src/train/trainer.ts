/**
 * The trainer: one loop for pre-training and fine-tuning. It builds the objective's graph on the model, selects
 * trainable and frozen weights from the strategy, compiles one training step (forward, backward, clipping,
 * AdamW) and an evaluation program, then runs steps with a learning-rate schedule, logging (JSONL + TensorBoard),
 * periodic evaluation and checkpoints. Everything that varies between steps (batch, dropout key, learning rate)
 * is a function of the seed and the step, so a resumed run continues exactly where the checkpoint left it.
 */
import { join } from 'node:path';
import { Graph, type Value } from '../engine/ir/graph.ts';
import { formatShape, sameShape } from '../engine/ir/shape.ts';
import { dropoutKey } from '../engine/ops/random.ts';
import type { OptimizerConfig } from '../engine/optim/optimizers.ts';
import { lrMultiplier, type ScheduleConfig } from '../engine/optim/schedule.ts';
import { ParameterStore } from '../engine/runtime/param-store.ts';
import { Program } from '../engine/runtime/session.ts';
import { type StepFeed, type Stepper, TrainStep } from '../engine/runtime/train-step.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { type LoraModule, mergeLora } from '../nn/lora.ts';
import { initTensor, ParamBuilder } from '../nn/module.ts';
import { dequantizeModule, isQuantParam, quantizeModules } from '../nn/quant.ts';
import { TlabError, validChoices } from '../util/errors.ts';
import {
  type LoadedCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.ts';
import { TrainingLogs } from './logging/training-logs.ts';
import { TrainingProgress } from './logging/training-progress.ts';
import type { Objective } from './objective.ts';
import { type ComponentOf, loraFor, planParameters, type StrategyConfig } from './strategy.ts';

/** Produces the batch with a given index (a pure function of the index and the source's seed). */
export interface BatchSource {
  batch(index: number): Record<string, HostTensor>;
}

export interface TrainerOptions {
  /** Where checkpoints go (`<checkpointDir>/step-*`, `latest`). */
  checkpointDir: string;
  /** Where metrics.jsonl and TensorBoard events go. */
  logDir: string;
  /** Builds the model's forward into the objective (the model is used through the objective). */
  objective: Objective;
  /** Weights to start from (pre-trained); parameters not in it are initialised from the seed. */
  initialWeights?: ReadonlyMap<string, HostTensor> | null;
  /** Initialise only these missing parameters from the seed (e.g. LoRA adapters, a new head); default: all. */
  allowInit?: (name: string) => boolean;
  train: BatchSource;
  eval?: { source: BatchSource; batches: number } | null;
  strategy: StrategyConfig;
  componentOf?: ComponentOf;
  componentPrefixes?: Readonly<Record<string, string>>;
  optimizer: OptimizerConfig;
  learningRate: number;
  schedule: ScheduleConfig;
  clipNorm?: number | null;
  maxSteps: number;
  microBatches?: number;
  stepsPerRun?: number;
  evalEvery?: number;
  saveEvery?: number;
  logEvery?: number;
  keepCheckpoints?: number;
  seed: number;
  /** Hash of the settings that must match on resume (config, data, tokenizer, starting weights); stored. */
  fingerprint: string;
  /** What the fingerprint covers, readable: stored too, so a refused resume names what changed. */
  settings?: Record<string, unknown>;
  /** 'auto' resumes when a checkpoint exists; 'never' starts over (existing checkpoints are an error). */
  resume?: 'auto' | 'never';
  /** Stop after this many steps in this session (tests simulate a crash); the run is not finished. */
  stopAfter?: number;
  /** Stops training between steps when aborted (a pre-empted cluster job): a checkpoint is saved, then it throws. */
  signal?: AbortSignal;
  quiet?: boolean;
  tensorboard?: boolean;
  /** Facts about the run's data, logged once as metrics.jsonl's `data` record at step 0 of a fresh run. */
  dataRecord?: Readonly<Record<string, number | string | null>>;
}

export interface TrainResult {
  step: number;
  resumedFrom: number;
  /** Training loss of each step run in this session. */
  losses: number[];
  evals: EvalRecord[];
  /** Trainable weights after the last step (merged into full model weights by `finalWeights`). */
  store: ParameterStore;
  /** All weights of the model (frozen + trained, LoRA adapters kept separate). */
  weights: Map<string, HostTensor>;
  /** Full weights with LoRA merged into the base (what an exported model needs). */
  mergedWeights: Map<string, HostTensor>;
  /** The modules that carry LoRA adapters (empty without LoRA): what a PEFT adapter export needs. */
  loraModules: LoraModule[];
  checkpoint: string | null;
  /** Seconds spent in training steps this session (no compilation, evaluation or checkpointing). */
  stepSeconds: number;
}

/**
 * One evaluation: loss per target token; accuracy over content targets (special and unknown tokens excluded) and
 * the teacher-forced exact match of whole rows, when the objective reports them (causalLmObjective).
 */
export interface EvalRecord {
  step: number;
  loss: number;
  accuracy: number;
  exact_match?: number;
  /** The content targets accuracy is over, and the rows exact match is over. */
  tokens?: number;
  rows?: number;
}

/** Accuracy and exact match from summed metrics (content targets when the objective counts them). */
export function accuracyOf(
  metrics: Readonly<Record<string, number>>,
  targets: number,
): Omit<EvalRecord, 'step' | 'loss'> {
  const ratio = (a: number, b: number) => a / Math.max(b, 1);
  if (metrics.content === undefined) return { accuracy: ratio(metrics.correct ?? 0, targets) };
  return {
    accuracy: ratio(metrics.correct ?? 0, metrics.content),
    exact_match: ratio(metrics.exact ?? 0, metrics.rows ?? 0),
    tokens: metrics.content,
    rows: metrics.rows ?? 0,
  };
}

export async function train(options: TrainerOptions): Promise<TrainResult> {
  const evalEvery = options.evalEvery ?? 0;
  const saveEvery = options.saveEvery ?? 0;
  const logEvery = options.logEvery ?? 1;
  const k = options.stepsPerRun ?? 1;
  const micro = options.microBatches ?? 1;

  // Training graph: training mode with a dropout key per step and micro-batch (k1, k2, micro-batch index).
  const graph = new Graph();
  const lora = loraFor(options.strategy, options.componentPrefixes);
  const key = graph.input('dropout_key', 'int64', [3]);
  const quantize = options.strategy.quantizeBase ?? null;
  const pb = new ParamBuilder(graph, 'float32', lora, { training: true, dropoutKey: key }, quantize);
  const out = options.objective.build(graph, pb);
  const plan = planParameters(pb.specs.values(), options.strategy, options.learningRate, options.componentOf);

  // Weights: pre-trained where given, initialised from the seed otherwise; a 4-bit base quantized from those.
  const quantized = quantizeModules(
    pb.quantModules.values(),
    (n) => options.initialWeights?.get(n),
    options.seed,
  );
  const weights = new Map<string, HostTensor>();
  const missing: string[] = [];
  for (const spec of pb.specs.values()) {
    const given = quantized.get(spec.name) ?? options.initialWeights?.get(spec.name);
    if (given) {
      if (!sameShape(given.shape, spec.shape)) {
        throw new TlabError(
          `weight '${spec.name}' has shape ${formatShape(given.shape)}, the model expects ${formatShape(spec.shape)}`,
        );
      }
      weights.set(spec.name, given);
    } else if (!options.initialWeights || (options.allowInit?.(spec.name) ?? false)) {
      weights.set(spec.name, initTensor(spec, options.seed));
    } else missing.push(spec.name);
  }
  if (missing.length) {
    throw new TlabError(
      `the starting weights lack ${missing.length} parameter(s) the model needs: ${validChoices(missing, 8)}`,
    );
  }
  // A resume that cannot match is refused before anything is compiled.
  const checkpoint = loadLatestCheckpoint(options.checkpointDir);
  if (checkpoint && options.resume === 'never') {
    throw new TlabError(
      `${options.checkpointDir}: holds checkpoints of an earlier run; resume it, or choose another run name or output folder`,
    );
  }
  if (checkpoint) checkFingerprint(checkpoint, options);
  const frozen = new Map(plan.frozen.map((n) => [n, weights.get(n)!]));
  const trainable = plan.trainable.map((n) => graph.inputs.get(n)!);
  const step = await TrainStep.compile({
    graph,
    lossSum: out.lossSum,
    count: out.count,
    metrics: out.metrics,
    trainable,
    frozen,
    optimizer: options.optimizer,
    groups: plan.groups,
    clipNorm: options.clipNorm ?? null,
    stepsPerRun: k,
    microBatches: micro,
  });
  // Sessions are released however this ends: an error anywhere below (compiling the evaluation, a checkpoint
  // that does not fit) would otherwise leak them (native memory and thread pools).
  let evalProgram: Program | null = null;
  try {
    // Evaluation graph: the same weights, no dropout.
    if (options.eval) {
      const g = new Graph();
      const evalPb = new ParamBuilder(g, 'float32', lora, undefined, quantize);
      const e = options.objective.build(g, evalPb);
      const outputs: Record<string, Value> = { loss_sum: e.lossSum, count: e.count };
      for (const [n, v] of Object.entries(e.metrics)) outputs[`metric.${n}`] = v;
      evalProgram = await Program.compile(g, { outputs, bind: frozen });
    }

    // State: fresh, or the latest checkpoint.
    const store = new ParameterStore(plan.trainable.map((n) => [n, weights.get(n)!] as [string, HostTensor]));
    let sessionStart = performance.now();
    const state: TrainerState = {
      step: 0,
      seed: options.seed,
      fingerprint: options.fingerprint,
      ...(options.settings ? { settings: options.settings } : {}),
      tokensSeen: 0,
      bestEvalLoss: null,
      trainSeconds: 0,
    };
    if (checkpoint) restore(checkpoint, store, step, options, state);
    step.initState(store);
    const resumedFrom = state.step;

    const logs = new TrainingLogs(options.logDir, {
      tensorboard: options.tensorboard ?? true,
      jsonl: { resumeFromStep: resumedFrom, onWarning: options.quiet ? () => {} : undefined },
    });
    const progress = new TrainingProgress({
      totalSteps: options.maxSteps,
      startStep: resumedFrom,
      silent: options.quiet,
    });
    if (resumedFrom === 0 && options.dataRecord) logs.log(0, 'data', options.dataRecord);
    const losses: number[] = [];
    let stepSeconds = 0;
    const evals: TrainResult['evals'] = [];
    let savedPath: string | null = checkpoint?.dir ?? null;
    let savedStep = checkpoint ? state.step : -1;
    const save = () => {
      state.trainSeconds += (performance.now() - sessionStart) / 1000;
      sessionStart = performance.now();
      savedPath = saveCheckpoint(
        options.checkpointDir,
        store,
        step.paramNames,
        step.stateNames,
        state,
        options.keepCheckpoints ?? 3,
      );
      savedStep = state.step;
    };
    const runEval = async () => {
      if (!evalProgram || !options.eval) return;
      let lossSum = 0;
      let count = 0;
      const sums: Record<string, number> = {};
      const feeds: Record<string, HostTensor> = Object.fromEntries(store.entries());
      for (let i = 0; i < options.eval.batches; i++) {
        const r = await evalProgram.run({ ...options.eval.source.batch(i), ...feeds });
        lossSum += Number(r.loss_sum.data[0]);
        count += Number(r.count.data[0]);
        for (const [name, v] of Object.entries(r))
          if (name.startsWith('metric.'))
            sums[name.slice(7)] = (sums[name.slice(7)] ?? 0) + Number(v.data[0]);
      }
      const loss = lossSum / Math.max(count, 1);
      const record: EvalRecord = { step: state.step, loss, ...accuracyOf(sums, count) };
      evals.push(record);
      const { step: _, ...logged } = record;
      logs.log(state.step, 'eval', logged);
      if (state.bestEvalLoss === null || loss < state.bestEvalLoss) state.bestEvalLoss = loss;
    };

    const stopAt = Math.min(
      options.maxSteps,
      options.stopAfter === undefined ? Number.POSITIVE_INFINITY : resumedFrom + options.stopAfter,
    );
    try {
      if (resumedFrom === 0 && evalEvery > 0) await runEval();
      while (state.step < stopAt && !options.signal?.aborted) {
        // Run up to k steps, but stop at the next eval/save boundary so they happen at exact steps.
        const boundary = (every: number) =>
          every > 0 ? every - (state.step % every) : Number.POSITIVE_INFINITY;
        const n = Math.min(k, stopAt - state.step, boundary(evalEvery), boundary(saveEvery));
        const feeds: StepFeed[] = [];
        let tokens = 0;
        for (let i = 0; i < n; i++) {
          const s = state.step + i;
          const mult = lrMultiplier(options.schedule, s);
          // The step's key plus the micro-batch index: a row's dropout mask depends on its row in the whole batch,
          // so splitting a batch into micro-batches does not change training.
          const [k1, k2] = dropoutKey(options.seed, s);
          const batches = Array.from(
            { length: micro },
            (_, j): Record<string, HostTensor> => ({
              ...options.train.batch(s * micro + j),
              dropout_key: {
                dtype: 'int64',
                shape: [3],
                data: BigInt64Array.of(BigInt(k1), BigInt(k2), BigInt(j)),
              },
            }),
          );
          for (const b of batches) tokens += countTokens(b);
          feeds.push(
            micro > 1
              ? { micro: batches, lr: plan.baseLrs.map((lr) => lr * mult) }
              : { data: batches[0], lr: plan.baseLrs.map((lr) => lr * mult) },
          );
        }
        const t0 = performance.now();
        const r = await step.run(store, feeds, state.step);
        stepSeconds += (performance.now() - t0) / 1000;
        if (!r.committed) {
          const i = Math.max(
            0,
            r.losses.findIndex(
              (l, j) => !Number.isFinite(l) || !Number.isFinite(r.gradNorms[j]) || r.nonFinite[j] > 0,
            ),
          );
          const finite = Number.isFinite(r.losses[i]) && Number.isFinite(r.gradNorms[i]);
          const what = finite
            ? `the update made ${r.nonFinite[i]} weight or optimizer value(s) non-finite (loss ${r.losses[i]}, gradient norm ${r.gradNorms[i]}: the learning rate is too large)`
            : `loss ${r.losses[i]}, gradient norm ${r.gradNorms[i]}`;
          throw new TlabError(
            `step ${state.step + i + 1}: ${what}; training stopped before applying it`,
            savedPath ? `the last good checkpoint is ${savedPath}` : 'no checkpoint was written yet',
          );
        }
        for (let i = 0; i < n; i++) {
          state.step += 1;
          losses.push(r.losses[i]);
          const stepMetrics = Object.fromEntries(Object.entries(r.metrics).map(([n, v]) => [n, v[i]]));
          if (state.step % logEvery === 0 || state.step === options.maxSteps) {
            logs.log(state.step, 'train', {
              loss: r.losses[i],
              ...(stepMetrics.correct !== undefined
                ? { accuracy: accuracyOf(stepMetrics, tokensOf(feeds[i])).accuracy }
                : {}),
              grad_norm: r.gradNorms[i],
              lr: feeds[i].lr[0],
            });
          }
        }
        state.tokensSeen += tokens;
        progress.step({ steps: n, loss: r.losses[n - 1], learningRate: feeds[n - 1].lr[0], tokens });
        if (evalEvery > 0 && state.step % evalEvery === 0) await runEval();
        if (saveEvery > 0 && state.step % saveEvery === 0) save();
      }
      if (options.signal?.aborted && state.step < options.maxSteps) {
        if (savedStep !== state.step) save();
        throw new TlabError(
          `training stopped at step ${state.step} of ${options.maxSteps} (${String(options.signal.reason ?? 'aborted')}); running it again resumes from ${savedPath}`,
        );
      }
      if (state.step >= options.maxSteps) {
        if (evalEvery > 0 && state.step % evalEvery !== 0) await runEval();
        if (savedStep !== state.step) save();
      }
    } finally {
      progress.finish();
      logs.close();
    }
    const all = new Map(weights);
    for (const [n, t] of store.entries()) if (all.has(n)) all.set(n, t);
    // A 4-bit base merges as PEFT merges into one: dequantized, plus the adapters' delta.
    const floatBase = new Map(all);
    for (const m of pb.quantModules.values()) floatBase.set(`${m.path}.weight`, dequantizeModule(m, all));
    const merged = mergeLora(floatBase, pb.loraModules.values());
    for (const n of [...merged.keys()])
      if (n.includes('.lora_A.') || n.includes('.lora_B.') || isQuantParam(n)) merged.delete(n);
    return {
      step: state.step,
      resumedFrom,
      losses,
      evals,
      store,
      weights: all,
      mergedWeights: merged,
      loraModules: [...pb.loraModules.values()],
      checkpoint: savedPath,
      stepSeconds,
    };
  } finally {
    await step.release();
    await evalProgram?.release();
  }
}

/** Refuses a checkpoint made with other settings, naming what changed when both sides recorded them. */
function checkFingerprint(
  checkpoint: LoadedCheckpoint,
  options: Pick<TrainerOptions, 'fingerprint' | 'settings'>,
): void {
  const { dir } = checkpoint;
  if (checkpoint.state.fingerprint !== options.fingerprint) {
    const changed =
      checkpoint.state.settings && options.settings
        ? changedSettings(checkpoint.state.settings, options.settings)
        : [];
    throw new TlabError(
      `${dir}: this checkpoint was made with other settings${changed.length ? `: ${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ', ...' : ''}` : ' (model, data, tokenizer, strategy or training)'}; resume with the same config, or start a new run (another name or output folder)`,
      changed.length > 3 ? `changed: ${changed.join(', ')}` : undefined,
    );
  }
}

/** Restores a checkpoint exactly, or refuses: the same settings, and every weight and optimizer tensor present. */
function restore(
  checkpoint: LoadedCheckpoint,
  store: ParameterStore,
  stepper: Stepper,
  options: Pick<TrainerOptions, 'fingerprint' | 'settings'>,
  state: TrainerState,
): void {
  const { dir } = checkpoint;
  checkFingerprint(checkpoint, options);
  const want = new Map(
    [...store.entries()].map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape }] as const),
  );
  checkTensors(join(dir, 'trainable.safetensors'), checkpoint.params, want, 'parameter');
  const optFile = join(dir, 'optimizer.safetensors');
  if (stepper.stateNames.length > 0 && !checkpoint.optimizer)
    throw new TlabError(
      `${optFile}: missing: the optimizer state of step ${checkpoint.state.step} (${stepper.stateNames.length} tensors) is needed to resume exactly`,
      'restore the file, or start a new run (another name or output folder)',
    );
  checkTensors(optFile, checkpoint.optimizer ?? new Map(), stepper.stateTypes, 'optimizer state');
  for (const [name, t] of checkpoint.params) store.set(name, t);
  for (const [name, t] of checkpoint.optimizer ?? []) store.set(name, t);
  Object.assign(state, checkpoint.state, options.settings ? { settings: options.settings } : {});
}

/** The checkpoint file holds exactly the expected tensors, with their dtypes and shapes. */
function checkTensors(
  file: string,
  got: ReadonlyMap<string, HostTensor>,
  want: ReadonlyMap<string, { dtype: string; shape: readonly number[] }>,
  what: string,
): void {
  const missing = [...want.keys()].filter((n) => !got.has(n));
  if (missing.length)
    throw new TlabError(
      `${file}: ${what} '${missing[0]}' is missing${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`,
      `missing: ${validChoices(missing, 8)}`,
    );
  const unknown = [...got.keys()].filter((n) => !want.has(n));
  if (unknown.length)
    throw new TlabError(
      `${file}: holds ${what} '${unknown[0]}' that this run does not have${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''}`,
      `expected: ${validChoices(want.keys(), 8)}`,
    );
  for (const [name, type] of want) {
    const t = got.get(name)!;
    if (t.dtype !== type.dtype || !sameShape(t.shape, type.shape))
      throw new TlabError(
        `${file}: ${what} '${name}' is ${t.dtype}${formatShape(t.shape)}, this run has ${type.dtype}${formatShape(type.shape)}`,
      );
  }
}

/** Settings paths whose values differ, as `path (old → new)`. */
export function changedSettings(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const flat = (v: unknown, prefix: string, out: Map<string, string>): Map<string, string> => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) flat(x, prefix ? `${prefix}.${k}` : k, out);
    } else out.set(prefix, JSON.stringify(v) ?? 'undefined');
    return out;
  };
  const a = flat(before, '', new Map());
  const b = flat(after, '', new Map());
  const short = (s: string | undefined) =>
    s === undefined ? '(none)' : s.length > 40 ? `${s.slice(0, 37)}...` : s;
  return [...new Set([...a.keys(), ...b.keys()])]
    .filter((k) => a.get(k) !== b.get(k))
    .sort()
    .map((k) => `${k} (${short(a.get(k))} → ${short(b.get(k))})`);
}

function countTokens(batch: Record<string, HostTensor>): number {
  const m = batch.attention_mask;
  if (!m) return 0;
  let n = 0;
  for (const v of m.data as BigInt64Array) n += Number(v);
  return n;
}

/** Trained-on targets of a step (the denominator of token accuracy). */
function tokensOf(feed: StepFeed): number {
  let n = 0;
  for (const b of feed.micro ?? [feed.data!]) {
    const t = b.targets;
    if (!t) continue;
    for (const v of t.data as BigInt64Array) if (v !== -100n) n += 1;
  }
  return n;
}
