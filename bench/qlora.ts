/**
 * QLoRA at Qwen2-VL-2B's shapes (the qwen2-vl-2b preset: Qwen/Qwen2-VL-2B-Instruct's config.json, random
 * weights): one LoRA training step (r 8, alpha 16 on the language model's q_proj and v_proj, AdamW) on one
 * 224x224 image (256 patches, 64 image tokens) and 128 tokens, with the frozen base stored
 *   nf4      bitsandbytes NF4, block 64, double quantization (the QLoRA recipe)
 *   int4     uniform int4, block 64 (MatMulNBits)
 *   float32  the full-precision base (the reference)
 * Each variant runs in its own process; reported: peak resident memory (getrusage maxRSS), seconds of the
 * second step (the first includes onnxruntime's warm-up) and of setup. A float32 base at full depth needs about
 * twice its 8.8 GB of weights (ours and onnxruntime's copy) plus activations; when the machine lacks the memory
 * for it, the float32 and nf4 bases are measured at 1/4 and 1/2 depth and the peak is extrapolated linearly in the
 * number of layers (the nf4 full-depth measurement checks the extrapolation).
 *
 *   npm run bench -- qlora [--variant nf4|int4|float32 --depth 1] [--skip-float]
 */
import { spawnSync } from 'node:child_process';
import { freemem, totalmem } from 'node:os';
import { Graph } from '../src/engine/ir/graph.ts';
import * as T from '../src/engine/ops/index.ts';
import { ParameterStore } from '../src/engine/runtime/param-store.ts';
import { TrainStep } from '../src/engine/runtime/train-step.ts';
import type { HostTensor } from '../src/engine/tensor.ts';
import { parseHfConfig } from '../src/models/hf/configs.ts';
import { presetConfig } from '../src/models/hf/init-folder.ts';
import { buildModel } from '../src/models/hf/registry.ts';
import type { PatchImage, Vlm } from '../src/models/types.ts';
import { initTensor, ParamBuilder } from '../src/nn/module.ts';
import { isQuantParam, quantizeModules } from '../src/nn/quant.ts';
import { Rng } from '../src/util/random.ts';

const SEQ = 128;
const GRID = [1, 16, 16] as const; // a 224x224 image: 16x16 patches of 14, 8x8 merged tokens
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

interface Result {
  variant: string;
  depth: number;
  textLayers: number;
  visionBlocks: number;
  parameters: number;
  frozenBytes: number;
  setupSeconds: number;
  compileSeconds: number;
  stepSeconds: number;
  loss: number;
  peakRssGB: number;
}

async function measure(variant: 'nf4' | 'int4' | 'float32', depth: number): Promise<Result> {
  const t0 = performance.now();
  const json = presetConfig('qwen2-vl-2b');
  const textLayers = Math.max(1, Math.round(28 * depth));
  const visionBlocks = Math.max(1, Math.round(32 * depth));
  json.num_hidden_layers = textLayers;
  (json.vision_config as Record<string, unknown>).depth = visionBlocks;
  const config = parseHfConfig(json, 'qwen2-vl-2b preset');
  const vlm = buildModel(config, 'vlm').model as Vlm;
  const graph = new Graph();
  const lora = { r: 8, alpha: 16, targets: [/^model\.layers\.\d+\.self_attn\.(q_proj|v_proj)$/] };
  const quantize = variant === 'float32' ? null : { format: variant, doubleQuant: variant === 'nf4' };
  const pb = new ParamBuilder(graph, 'float32', lora, { training: true, dropoutKey: null }, quantize);
  const image: PatchImage = {
    patches: new Float32Array(GRID[0] * GRID[1] * GRID[2] * 1176),
    grid: GRID,
  };
  const imageTokens = vlm.imageInputs.tokens(image, 'image');
  const rows = [[image]];
  const ids = graph.input('ids', 'int64', [1, SEQ]);
  const targets = graph.input('targets', 'int64', [1, SEQ]);
  const out = vlm.forward(pb, { ids, ...vlm.imageInputs.declare(graph, rows) });
  const lossSum = T.crossEntropy(out.logits, targets, { reduction: 'sum' });
  const count = T.reduceSum(T.cast(T.notEqual(targets, -100), 'float32'));

  // Frozen weights: 4-bit modules quantized one at a time from their initialisation, the rest float32.
  const frozen = quantize
    ? quantizeModules(pb.quantModules.values(), () => undefined, 0)
    : new Map<string, HostTensor>();
  const trainable: HostTensor[] = [];
  const trainableNames: string[] = [];
  let parameters = 0;
  for (const spec of pb.specs.values()) {
    if (isQuantParam(spec.name)) continue;
    parameters += spec.shape.reduce((a, b) => a * b, 1);
    const t = initTensor(spec, 0);
    if (spec.name.includes('.lora_')) {
      trainable.push(t);
      trainableNames.push(spec.name);
    } else frozen.set(spec.name, t);
  }
  for (const m of pb.quantModules.values()) parameters += m.rows * m.cols;
  let frozenBytes = 0;
  for (const t of frozen.values()) frozenBytes += t.data.byteLength;
  const t1 = performance.now();
  const step = await TrainStep.compile({
    graph,
    lossSum,
    count,
    trainable: trainableNames.map((n) => graph.inputs.get(n)!),
    frozen,
    optimizer: { kind: 'adamw', weightDecay: 0 },
    clipNorm: 1,
    stepsPerRun: 1,
    threads: undefined,
  });
  const t2 = performance.now();
  frozen.clear(); // the session holds its own copy; ours can go

  const store = new ParameterStore(trainableNames.map((n, i) => [n, trainable[i]] as [string, HostTensor]));
  step.initState(store);
  const rng = new Rng(1);
  const idData = new BigInt64Array(SEQ);
  const tgt = new BigInt64Array(SEQ).fill(-100n);
  // <|vision_start|>, the image's placeholders, <|vision_end|>, then text; the text's next tokens are targets.
  idData[0] = 151652n;
  for (let i = 0; i < imageTokens; i++) idData[1 + i] = BigInt(vlm.imageTokenId);
  idData[1 + imageTokens] = 151653n;
  for (let i = 2 + imageTokens; i < SEQ; i++) idData[i] = BigInt(rng.int(151000));
  for (let i = 2 + imageTokens; i + 1 < SEQ; i++) tgt[i] = idData[i + 1];
  const data: Record<string, HostTensor> = {
    ids: { dtype: 'int64', shape: [1, SEQ], data: idData },
    targets: { dtype: 'int64', shape: [1, SEQ], data: tgt },
    ...vlm.imageInputs.feeds(rows),
  };
  await step.run(store, [{ data, lr: [1e-4] }], 0);
  const t3 = performance.now();
  const r = await step.run(store, [{ data, lr: [1e-4] }], 1);
  const t4 = performance.now();
  await step.release();
  return {
    variant,
    depth,
    textLayers,
    visionBlocks,
    parameters,
    frozenBytes,
    setupSeconds: (t1 - t0) / 1000,
    compileSeconds: (t2 - t1) / 1000,
    stepSeconds: (t4 - t3) / 1000,
    loss: r.losses[0],
    peakRssGB: process.resourceUsage().maxRSS / 1024 ** 2,
  };
}

function child(variant: string, depth: number): Result {
  const r = spawnSync(
    process.execPath,
    [
      '--max-old-space-size=16384',
      '--import',
      'tsx',
      'bench/qlora.ts',
      '--variant',
      variant,
      '--depth',
      String(depth),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (r.status !== 0)
    throw new Error(`qlora ${variant} at depth ${depth} failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const fmt = (r: Result) =>
  `${r.variant.padEnd(8)} ${r.textLayers}+${r.visionBlocks} layers  ${(r.parameters / 1e9).toFixed(3)}B params  frozen ${(r.frozenBytes / 1024 ** 3).toFixed(2)} GiB  peak RSS ${r.peakRssGB.toFixed(2)} GiB  step ${r.stepSeconds.toFixed(1)} s  (setup ${r.setupSeconds.toFixed(0)} s, compile ${r.compileSeconds.toFixed(0)} s, loss ${r.loss.toFixed(3)})`;

/** Peak at full depth from two reduced depths, linear in the number of layers. */
function extrapolate(a: Result, b: Result): number {
  const slope = (b.peakRssGB - a.peakRssGB) / (b.depth - a.depth);
  return a.peakRssGB + slope * (1 - a.depth);
}

const variant = arg('--variant');
if (variant) {
  const r = await measure(variant as 'nf4' | 'int4' | 'float32', Number(arg('--depth') ?? 1));
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  const nf4 = child('nf4', 1);
  console.log(fmt(nf4));
  const int4 = child('int4', 1);
  console.log(fmt(int4));
  let reference: number;
  let how: string;
  // GB: our copy of the float32 weights, onnxruntime's, and the serialized initializers while the session is built,
  // plus activations (a full-depth float32 run was OOM-killed with 22 GiB free on a 24 GiB machine).
  const need = 3 * 8.8 + 3;
  if (!process.argv.includes('--skip-float') && freemem() / 1024 ** 3 > need + 2) {
    const f = child('float32', 1);
    console.log(fmt(f));
    reference = f.peakRssGB;
    how = 'measured';
  } else {
    const [fq, fh, nq, nh] = [
      child('float32', 0.25),
      child('float32', 0.5),
      child('nf4', 0.25),
      child('nf4', 0.5),
    ];
    for (const r of [fq, fh, nq, nh]) console.log(fmt(r));
    reference = extrapolate(fq, fh);
    const check = extrapolate(nq, nh);
    how = `extrapolated from 1/4 and 1/2 depth (free memory ${(freemem() / 1024 ** 3).toFixed(1)} of ${(totalmem() / 1024 ** 3).toFixed(1)} GiB; the same extrapolation gives nf4 ${check.toFixed(2)} GiB vs ${nf4.peakRssGB.toFixed(2)} measured)`;
    console.log(`float32 base at full depth: ${reference.toFixed(2)} GiB peak RSS, ${how}`);
  }
  console.log(
    JSON.stringify({
      bench: 'qlora',
      ours: Number(nf4.peakRssGB.toFixed(2)),
      reference: Number(reference.toFixed(2)),
      unit: 'GiB peak RSS of one LoRA step at Qwen2-VL-2B shapes (nf4 + double quant base vs float32 base)',
      ratio: Number((reference / nf4.peakRssGB).toFixed(2)),
      float32: how,
      nf4_step_seconds: Number(nf4.stepSeconds.toFixed(1)),
      int4_step_seconds: Number(int4.stepSeconds.toFixed(1)),
      int4_peak_rss_gib: Number(int4.peakRssGB.toFixed(2)),
    }),
  );
}
