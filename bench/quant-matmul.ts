/**
 * How to run a 4-bit weight on onnxruntime-node's CPU (QLoRA's frozen base), measured on one projection of
 * Qwen2-VL-2B's text model (W [8960, 1536], the MLP's gate/up shape) with 256 tokens: forward y = x·Wᵀ and
 * forward + backward (dx = dy·W, what LoRA training needs through a frozen layer), time per run and the process's
 * resident memory after the session ran, each variant in its own process.
 *   float32        MatMul of the float weight (the reference)
 *   dq-int4        opset-21 blocked DequantizeLinear of an int4 initializer, then MatMul (both directions share it)
 *   nbits-int4     com.microsoft MatMulNBits forward; backward dequantizes explicitly (engine/ops/quant.ts)
 *   bnb4-nf4       com.microsoft MatMulBnb4 forward (bitsandbytes NF4 layout); backward as above
 * The last line compares nbits-int4 (what the engine emits for int4) with float32 for forward + backward.
 *
 *   npm run bench -- quant-matmul [--tokens 256]
 */
import { spawnSync } from 'node:child_process';
import { create, toBinary } from '@bufbuild/protobuf';
import * as P from 'onnx-buf';
import ort from 'onnxruntime-node';
import { grad } from '../src/engine/autodiff/grad.ts';
import { Graph } from '../src/engine/ir/graph.ts';
import * as T from '../src/engine/ops/index.ts';
import { Program } from '../src/engine/runtime/session.ts';
import type { HostTensor } from '../src/engine/tensor.ts';
import { type QuantModule, quantizeModule } from '../src/nn/quant.ts';
import { Rng } from '../src/util/random.ts';

const N = 8960;
const K = 1536;
const BLOCK = 64;
const tokensArg = process.argv.indexOf('--tokens');
const M = tokensArg > 0 ? Number(process.argv[tokensArg + 1]) : 256;
const REPEATS = 5;
const VARIANTS = ['float32', 'dq-int4', 'nbits-int4', 'bnb4-nf4'] as const;
type Variant = (typeof VARIANTS)[number];

function randomFloats(n: number, seed: number, scale: number): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });

async function timeRuns(run: () => Promise<unknown>): Promise<number> {
  await run();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < REPEATS; i++) {
    const t0 = performance.now();
    await run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** opset 21 DequantizeLinear of an int4 initializer (not expressible in the engine's dtypes): built with onnx-buf. */
function dequantizeLinearModel(codes: Uint8Array, scales: Float32Array, backward: boolean): Uint8Array {
  const DT = P.TensorProto_DataType;
  const AT = P.AttributeProto_AttributeType;
  const vi = (name: string, dims: number[]) =>
    create(P.ValueInfoProtoSchema, {
      name,
      type: create(P.TypeProtoSchema, {
        value: {
          case: 'tensorType',
          value: create(P.TypeProto_TensorSchema, {
            elemType: DT.FLOAT,
            shape: create(P.TensorShapeProtoSchema, {
              dim: dims.map((d) =>
                create(P.TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: BigInt(d) } }),
              ),
            }),
          }),
        },
      }),
    });
  const attr = (name: string, v: number | number[]) =>
    Array.isArray(v)
      ? create(P.AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) })
      : create(P.AttributeProtoSchema, { name, type: AT.INT, i: BigInt(v) });
  const node = (op: string, input: string[], output: string[], attrs: ReturnType<typeof attr>[] = []) =>
    create(P.NodeProtoSchema, { opType: op, input, output, attribute: attrs });
  // int4 two per byte, low nibble first; our int4 codes (zero point 8) become signed by flipping the top bit.
  const signed = codes.map((b) => b ^ 0x88);
  const nodes = [
    node('DequantizeLinear', ['Wq', 'S'], ['W'], [attr('axis', 1), attr('block_size', BLOCK)]),
    node('Transpose', ['W'], ['Wt'], [attr('perm', [1, 0])]),
    node('MatMul', ['x', 'Wt'], ['y']),
  ];
  if (backward) nodes.push(node('MatMul', ['dy', 'W'], ['dx']));
  const graph = create(P.GraphProtoSchema, {
    name: 'dq',
    node: nodes,
    initializer: [
      create(P.TensorProtoSchema, {
        name: 'Wq',
        dataType: DT.INT4,
        dims: [BigInt(N), BigInt(K)],
        rawData: signed,
      }),
      create(P.TensorProtoSchema, {
        name: 'S',
        dataType: DT.FLOAT,
        dims: [BigInt(N), BigInt(K / BLOCK)],
        rawData: new Uint8Array(scales.slice().buffer),
      }),
    ],
    input: [vi('x', [M, K]), ...(backward ? [vi('dy', [M, N])] : [])],
    output: [vi('y', [M, N]), ...(backward ? [vi('dx', [M, K])] : [])],
  });
  return toBinary(
    P.ModelProtoSchema,
    create(P.ModelProtoSchema, {
      irVersion: 10n,
      producerName: 'bench',
      graph,
      opsetImport: [create(P.OperatorSetIdProtoSchema, { domain: '', version: 21n })],
    }),
  );
}

async function measure(variant: Variant): Promise<Record<string, unknown>> {
  const w = randomFloats(N * K, 1, 0.02);
  const x = f32([M, K], randomFloats(M * K, 2, 1));
  const dy = f32([M, N], randomFloats(M * N, 3, 1));
  const rss0 = process.memoryUsage().rss;
  const format = variant === 'bnb4-nf4' ? 'nf4' : 'int4';
  const m: QuantModule = {
    path: 'proj',
    rows: N,
    cols: K,
    format,
    blockSize: BLOCK,
    doubleQuant: false,
    init: { kind: 'zeros' },
  };
  const params = variant === 'float32' ? null : quantizeModule(m, w);
  const out: Record<string, unknown> = { variant };
  for (const backward of [false, true]) {
    if (variant === 'dq-int4') {
      const session = await ort.InferenceSession.create(
        dequantizeLinearModel(
          params!.get('proj.weight.q4')!.data as Uint8Array,
          params!.get('proj.weight.absmax')!.data as Float32Array,
          backward,
        ),
        { intraOpNumThreads: 2, graphOptimizationLevel: 'all', logSeverityLevel: 3 },
      );
      const feeds: Record<string, ort.Tensor> = {
        x: new ort.Tensor('float32', x.data as Float32Array, [M, K]),
      };
      if (backward) feeds.dy = new ort.Tensor('float32', dy.data as Float32Array, [M, N]);
      out[backward ? 'fwd_bwd_ms' : 'fwd_ms'] = await timeRuns(() => session.run(feeds));
      await session.release();
      continue;
    }
    const graph = new Graph();
    const xin = graph.input('x', 'float32', [M, K]);
    let y: ReturnType<typeof T.matmul>;
    let bind: Map<string, HostTensor>;
    if (variant === 'float32') {
      const win = graph.input('w', 'float32', [N, K]);
      y = T.matmul(xin, T.transpose(win, [1, 0]));
      bind = new Map([['w', f32([N, K], w)]]);
    } else {
      const codes = params!.get('proj.weight.q4')!;
      const scales = params!.get('proj.weight.absmax')!;
      y = T.matmul4Bit(
        xin,
        graph.input('codes', 'uint8', codes.shape),
        graph.input('scales', 'float32', scales.shape),
        {
          format,
          rows: N,
          cols: K,
          blockSize: BLOCK,
        },
      );
      bind = new Map([
        ['codes', codes],
        ['scales', scales],
      ]);
    }
    const outputs: Record<string, typeof y> = { y };
    const feeds: Record<string, HostTensor> = { x };
    if (backward) {
      const dyIn = graph.input('dy', 'float32', [M, N]);
      outputs.dx = grad(T.reduceSum(T.mul(y, dyIn)), [xin])[0];
      feeds.dy = dy;
    }
    const program = await Program.compile(graph, { outputs, bind, threads: 2 });
    out[backward ? 'fwd_bwd_ms' : 'fwd_ms'] = await timeRuns(() => program.run(feeds));
    await program.release();
  }
  out.rss_growth_mb = Math.round((process.memoryUsage().rss - rss0) / 1e6);
  out.peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1e3);
  return out;
}

const one = process.argv.indexOf('--variant');
if (one > 0) {
  const r = await measure(process.argv[one + 1] as Variant);
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  const rows: Record<string, unknown>[] = [];
  for (const v of VARIANTS) {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/quant-matmul.ts', '--variant', v, '--tokens', String(M)],
      { encoding: 'utf8' },
    );
    if (child.status !== 0) throw new Error(`variant ${v} failed: ${child.stderr}`);
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!);
    rows.push(r);
    console.log(
      `${v.padEnd(12)} forward ${String(r.fwd_ms.toFixed(1)).padStart(7)} ms   forward+backward ${String(r.fwd_bwd_ms.toFixed(1)).padStart(7)} ms   peak RSS ${r.peak_rss_mb} MB`,
    );
  }
  const byName = Object.fromEntries(rows.map((r) => [r.variant, r]));
  const ours = byName['nbits-int4'].fwd_bwd_ms as number;
  const reference = byName.float32.fwd_bwd_ms as number;
  console.log(
    JSON.stringify({
      bench: 'quant-matmul',
      ours: Number(ours.toFixed(1)),
      reference: Number(reference.toFixed(1)),
      unit: `ms per forward+backward of x[${M},${K}]·Wᵀ, W [${N},${K}] (int4 MatMulNBits vs float32 MatMul)`,
      ratio: Number((reference / ours).toFixed(3)),
      variants: rows,
    }),
  );
}
