/**
 * QLoRA's 4-bit frozen base (Dettmers et al. 2023, as bitsandbytes and PEFT do it): the weight of every targeted
 * Linear is stored as 4-bit codes with one float32 scale per block of `blockSize` (64) values, dequantized inside
 * the graph (engine/ops/quant.ts); LoRA adapters, biases and norms stay float32.
 *   nf4   bitsandbytes' NormalFloat: absmax per block of the flattened weight, the nearest of 16 levels of
 *         x / absmax, two codes per byte (first in the high nibble); with double quantization the absmax values
 *         themselves are stored as 8-bit codes of bitsandbytes' dynamic map in blocks of 256, plus their mean.
 *   int4  uniform: scale = absmax / 7 per block along each row, code round(x / scale) + 8 in 0..15, low nibble
 *         first (onnxruntime MatMulNBits' layout and zero point).
 * Graph parameters under the module (e.g. `model.layers.0.self_attn.q_proj`): `weight.q4` (uint8 codes) and
 * `weight.absmax` (float32: nf4 [blocks, 1]; int4 [rows, cols / block] as MatMulNBits wants), or with double quantization `weight.absmax.q8`, `weight.absmax.scale`,
 * `weight.absmax.offset`.
 */

import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../engine/io/safetensors.ts';
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { TlabError } from '../util/errors.ts';
import { type Init, initTensor, type ParamBuilder, type ParamSpec } from './module.ts';

export type QuantFormat = T.FourBitFormat;
export const QUANT_FORMATS: readonly QuantFormat[] = ['nf4', 'int4'];

export interface QuantizeConfig {
  format: QuantFormat;
  /** Values per scale; default 64 (bitsandbytes' blocksize for 4-bit). */
  blockSize?: number;
  /** nf4: quantize the absmax values too (bitsandbytes bnb_4bit_use_double_quant); default false. */
  doubleQuant?: boolean;
  /** Modules left in float32 (a path ending with one of these); default ['lm_head'], as bitsandbytes skips it. */
  skip?: readonly string[];
}

/** A Linear whose base weight the graph reads as 4-bit codes. */
export interface QuantModule {
  path: string;
  rows: number;
  cols: number;
  format: QuantFormat;
  blockSize: number;
  doubleQuant: boolean;
  /** The float weight's initialisation (a model trained from scratch is initialised, then quantized). */
  init: Init;
}

export const DOUBLE_QUANT_BLOCK = 256;

/** The quantization settings checked once; a TlabError naming `where` and the valid values. */
export function checkQuantizeConfig(c: QuantizeConfig, where = 'quantize_base'): Required<QuantizeConfig> {
  if (!QUANT_FORMATS.includes(c.format))
    throw new TlabError(`${where}: '${c.format}' is not a 4-bit format; valid: ${QUANT_FORMATS.join(', ')}`);
  const blockSize = c.blockSize ?? 64;
  if (!Number.isInteger(blockSize) || blockSize < 16 || blockSize % 16 !== 0)
    throw new TlabError(`${where}: block size ${blockSize} must be a multiple of 16 (bitsandbytes uses 64)`);
  if (c.doubleQuant && c.format !== 'nf4')
    throw new TlabError(`${where}: double quantization is bitsandbytes' nf4 option; int4 has none`);
  return { format: c.format, blockSize, doubleQuant: c.doubleQuant ?? false, skip: c.skip ?? ['lm_head'] };
}

/** Whether the module at `path` (a projection of `rows` x `cols`) is quantized under `config`. */
export function quantizes(config: QuantizeConfig, path: string, rows: number, cols: number): boolean {
  const skip = config.skip ?? ['lm_head'];
  if (skip.some((s) => path === s || path.endsWith(`.${s}`))) return false;
  const bs = config.blockSize ?? 64;
  return config.format === 'int4' ? cols % bs === 0 : (rows * cols) % bs === 0;
}

/**
 * y = x Wᵀ with W read from 4-bit parameters declared under the current scope (called by nn/layers linear inside
 * the module's scope); records the module on the builder.
 */
export function quantizedProjection(
  pb: ParamBuilder,
  x: Value,
  inFeatures: number,
  outFeatures: number,
  initial: Init,
  config: QuantizeConfig,
): Value {
  const c = checkQuantizeConfig(config);
  const path = pb.fullName('').replace(/\.$/, '');
  const blocks = (outFeatures * inFeatures) / c.blockSize;
  const codesShape =
    c.format === 'int4'
      ? [outFeatures, inFeatures / c.blockSize, c.blockSize / 2]
      : [(outFeatures * inFeatures) / 2];
  const codes = pb.param('weight.q4', codesShape, initial, 'uint8');
  let scales: Value;
  if (c.doubleQuant) {
    const blocks2 = Math.ceil(blocks / DOUBLE_QUANT_BLOCK);
    scales = T.dequantizeBlockwise8Bit(
      pb.param('weight.absmax.q8', [blocks], initial, 'uint8'),
      T.constant(x.graph, 'float32', [256], DYNAMIC_MAP),
      pb.param('weight.absmax.scale', [blocks2], initial),
      pb.param('weight.absmax.offset', [1], initial),
      DOUBLE_QUANT_BLOCK,
    );
  } else
    scales = pb.param(
      'weight.absmax',
      c.format === 'int4' ? [outFeatures, inFeatures / c.blockSize] : [blocks, 1],
      initial,
    );
  pb.quantModules.set(path, {
    path,
    rows: outFeatures,
    cols: inFeatures,
    format: c.format,
    blockSize: c.blockSize,
    doubleQuant: c.doubleQuant,
    init: initial,
  });
  const p = { format: c.format, rows: outFeatures, cols: inFeatures, blockSize: c.blockSize };
  return T.matmul4Bit(x, codes, scales, p);
}

// ------------------------------------------------------------------------------------------ host quantizers

/**
 * bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 8-bit dynamic-exponent codes,
 * sorted, in float32 (the map double quantization stores absmax values with).
 */
function createDynamicMap(): Float32Array {
  const f = Math.fround;
  const data: number[] = [];
  const maxExp = 7;
  const nonSign = 7;
  for (let i = 0; i < maxExp; i++) {
    const items = 2 ** (i + nonSign - maxExp) + 1;
    // torch.linspace(0.1, 1, items) in float32: from the start below the middle, from the end above it.
    const start = f(0.1);
    const step = f(f(1 - start) / (items - 1));
    const half = Math.floor(items / 2);
    const bounds = Array.from({ length: items }, (_, k) =>
      k < half ? f(start + f(step * k)) : f(1 - f(step * (items - 1 - k))),
    );
    const scale = f(10 ** (-(maxExp - 1) + i));
    for (let k = 0; k + 1 < items; k++) {
      const mean = f(f(bounds[k] + bounds[k + 1]) / 2);
      data.push(f(scale * mean), f(-scale * mean));
    }
  }
  data.push(0, 1);
  data.sort((a, b) => a - b);
  return Float32Array.from(data);
}

export const DYNAMIC_MAP: Float32Array = createDynamicMap();

/** Index of the level nearest to `v` among sorted `levels` (ties to the lower one). */
function nearest(levels: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = levels.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (levels[mid] <= v) lo = mid;
    else hi = mid;
  }
  return Math.abs(v - levels[lo]) <= Math.abs(levels[hi] - v) ? lo : hi;
}

const NF4 = Float32Array.from(T.NF4_LEVELS);

export interface Nf4Quantized {
  /** [n / 2] two codes per byte, the first in the high nibble. */
  codes: Uint8Array;
  /** [n / blockSize] max |x| per block (as stored, or dequantized from the double quantization). */
  absmax: Float32Array;
  /** Double quantization: 8-bit codes of absmax − offset in blocks of 256, each block's absmax, and the offset. */
  double?: { codes: Uint8Array; absmax: Float32Array; offset: number };
}

/** bitsandbytes quantize_4bit(quant_type='nf4') of a flattened float32 weight. */
export function quantizeNf4(values: Float32Array, blockSize = 64, doubleQuant = false): Nf4Quantized {
  const n = values.length;
  if (n % blockSize !== 0 || blockSize % 2 !== 0)
    throw new TlabError(`nf4: ${n} values do not split into blocks of ${blockSize}`);
  const blocks = n / blockSize;
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(n / 2);
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let i = b * blockSize; i < (b + 1) * blockSize; i++) m = Math.max(m, Math.abs(values[i]));
    absmax[b] = m;
    const inv = m === 0 ? 0 : 1 / m;
    for (let i = b * blockSize; i < (b + 1) * blockSize; i += 2) {
      const hi = nearest(NF4, Math.fround(values[i] * inv));
      const lo = nearest(NF4, Math.fround(values[i + 1] * inv));
      codes[i >> 1] = (hi << 4) | lo;
    }
  }
  if (!doubleQuant) return { codes, absmax };
  const d = quantizeBlockwise8(absmax);
  return { codes, absmax: dequantizeBlockwise8(d), double: d };
}

/** bitsandbytes' compress_statistics: absmax − mean quantized blockwise (256) with the dynamic map. */
export function quantizeBlockwise8(
  values: Float32Array,
  blockSize = DOUBLE_QUANT_BLOCK,
): { codes: Uint8Array; absmax: Float32Array; offset: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const offset = Math.fround(sum / values.length);
  const blocks = Math.ceil(values.length / blockSize);
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(values.length);
  for (let b = 0; b < blocks; b++) {
    const end = Math.min(values.length, (b + 1) * blockSize);
    let m = 0;
    for (let i = b * blockSize; i < end; i++) m = Math.max(m, Math.abs(Math.fround(values[i] - offset)));
    absmax[b] = m;
    for (let i = b * blockSize; i < end; i++)
      codes[i] = nearest(DYNAMIC_MAP, m === 0 ? 0 : Math.fround(Math.fround(values[i] - offset) / m));
  }
  return { codes, absmax, offset };
}

export function dequantizeBlockwise8(
  d: { codes: Uint8Array; absmax: Float32Array; offset: number },
  blockSize = DOUBLE_QUANT_BLOCK,
): Float32Array {
  const out = new Float32Array(d.codes.length);
  for (let i = 0; i < out.length; i++)
    out[i] = Math.fround(
      Math.fround(DYNAMIC_MAP[d.codes[i]] * d.absmax[Math.floor(i / blockSize)]) + d.offset,
    );
  return out;
}

/** Uniform symmetric int4 per block along rows (MatMulNBits' layout: [rows, cols / block, block / 2], low nibble first). */
export function quantizeInt4(
  values: Float32Array,
  rows: number,
  cols: number,
  blockSize = 64,
): { codes: Uint8Array; scales: Float32Array } {
  if (cols % blockSize !== 0)
    throw new TlabError(`int4: ${cols} columns do not split into blocks of ${blockSize}`);
  const blocks = (rows * cols) / blockSize;
  const scales = new Float32Array(blocks);
  const codes = new Uint8Array((rows * cols) / 2);
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let i = b * blockSize; i < (b + 1) * blockSize; i++) m = Math.max(m, Math.abs(values[i]));
    const scale = Math.fround(m / 7);
    scales[b] = scale;
    const inv = scale === 0 ? 0 : 1 / scale;
    for (let i = b * blockSize; i < (b + 1) * blockSize; i += 2) {
      const q = (v: number) => Math.max(0, Math.min(15, Math.round(v * inv) + 8));
      codes[i >> 1] = q(values[i]) | (q(values[i + 1]) << 4);
    }
  }
  return { codes, scales };
}

/** The float32 values 4-bit codes stand for (what the graph's dequantize4Bit computes). */
export function dequantize4BitHost(
  format: QuantFormat,
  codes: Uint8Array,
  scales: Float32Array,
  blockSize: number,
): Float32Array {
  const out = new Float32Array(codes.length * 2);
  for (let j = 0; j < codes.length; j++) {
    const hi = codes[j] >> 4;
    const lo = codes[j] & 15;
    const s = scales[Math.floor((2 * j) / blockSize)];
    if (format === 'nf4') {
      out[2 * j] = Math.fround(NF4[hi] * s);
      out[2 * j + 1] = Math.fround(NF4[lo] * s);
    } else {
      out[2 * j] = Math.fround((lo - 8) * s);
      out[2 * j + 1] = Math.fround((hi - 8) * s);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ parameters <-> float weights

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });
const u8 = (shape: readonly number[], data: Uint8Array): HostTensor => ({ dtype: 'uint8', shape, data });

/** The graph parameters of one quantized module from its float32 weight [rows, cols]. */
export function quantizeModule(m: QuantModule, weight: Float32Array): Map<string, HostTensor> {
  if (weight.length !== m.rows * m.cols)
    throw new TlabError(`${m.path}.weight: ${weight.length} values, the module is ${m.rows} x ${m.cols}`);
  const out = new Map<string, HostTensor>();
  const blocks = (m.rows * m.cols) / m.blockSize;
  if (m.format === 'int4') {
    const q = quantizeInt4(weight, m.rows, m.cols, m.blockSize);
    out.set(`${m.path}.weight.q4`, u8([m.rows, m.cols / m.blockSize, m.blockSize / 2], q.codes));
    out.set(`${m.path}.weight.absmax`, f32([m.rows, m.cols / m.blockSize], q.scales));
    return out;
  }
  const q = quantizeNf4(weight, m.blockSize, m.doubleQuant);
  out.set(`${m.path}.weight.q4`, u8([(m.rows * m.cols) / 2], q.codes));
  if (q.double) {
    out.set(`${m.path}.weight.absmax.q8`, u8([blocks], q.double.codes));
    out.set(`${m.path}.weight.absmax.scale`, f32([q.double.absmax.length], q.double.absmax));
    out.set(`${m.path}.weight.absmax.offset`, f32([1], Float32Array.of(q.double.offset)));
  } else out.set(`${m.path}.weight.absmax`, f32([blocks, 1], q.absmax));
  return out;
}

/** The float32 weight [rows, cols] a quantized module's parameters stand for. */
export function dequantizeModule(m: QuantModule, params: ReadonlyMap<string, HostTensor>): HostTensor {
  const get = (n: string) => {
    const t = params.get(`${m.path}.${n}`);
    if (!t) throw new TlabError(`4-bit weight of ${m.path}: parameter '${m.path}.${n}' is missing`);
    return t;
  };
  const codes = get('weight.q4').data as Uint8Array;
  const scales = m.doubleQuant
    ? dequantizeBlockwise8({
        codes: get('weight.absmax.q8').data as Uint8Array,
        absmax: get('weight.absmax.scale').data as Float32Array,
        offset: (get('weight.absmax.offset').data as Float32Array)[0],
      })
    : (get('weight.absmax').data as Float32Array);
  return f32([m.rows, m.cols], dequantize4BitHost(m.format, codes, scales, m.blockSize));
}

/** The graph parameters of a quantized module. */
export function quantParamNames(m: QuantModule): string[] {
  const w = `${m.path}.weight`;
  return m.doubleQuant
    ? [`${w}.q4`, `${w}.absmax.q8`, `${w}.absmax.scale`, `${w}.absmax.offset`]
    : [`${w}.q4`, `${w}.absmax`];
}

/** Whether a parameter name is one of a quantized module's 4-bit tensors. */
export function isQuantParam(name: string): boolean {
  return /\.weight\.(q4|absmax(\.q8|\.scale|\.offset)?)$/.test(name);
}

/**
 * The 4-bit parameters of every quantized module: quantized from the float weight `source` gives (a pre-trained
 * folder's), else from a fresh initialisation (seeded, as nn/module initTensor), one module at a time so the full
 * float model is never held.
 */
export function quantizeModules(
  modules: Iterable<QuantModule>,
  source: (name: string) => HostTensor | undefined,
  seed: number,
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const m of modules) {
    const name = `${m.path}.weight`;
    const spec: ParamSpec = { name, shape: [m.rows, m.cols], dtype: 'float32', init: m.init };
    const given = source(name);
    if (!given && source(`${name}.q4`)) {
      // Already 4-bit (a quantized checkpoint): checked, then used as it is.
      checkQuantizedModule(m, source, 'the starting weights');
      for (const k of quantParamNames(m)) out.set(k, source(k)!);
      continue;
    }
    const w = given ? given.data : initTensor(spec, seed).data;
    const values = w instanceof Float32Array ? w : Float32Array.from(w as ArrayLike<number>);
    for (const [k, v] of quantizeModule(m, values)) out.set(k, v);
  }
  return out;
}

// ------------------------------------------------------------------------------------ 4-bit base checkpoints

/**
 * Checks given 4-bit tensors against a module (codes and scale counts follow from its shape and block size); a
 * TlabError naming `where`, the tensor and the block size the tensors were made with when they differ.
 */
export function checkQuantizedModule(
  m: QuantModule,
  get: (name: string) => HostTensor | undefined,
  where: string,
): void {
  const weights = m.rows * m.cols;
  const codes = get(`${m.path}.weight.q4`);
  if (codes?.dtype !== 'uint8' || codes.data.length * 2 !== weights)
    throw new TlabError(
      `${where}: '${m.path}.weight.q4' must be uint8 codes of ${weights} weights (${weights / 2} bytes)`,
    );
  const scales = m.doubleQuant ? get(`${m.path}.weight.absmax.q8`) : get(`${m.path}.weight.absmax`);
  const name = `${m.path}.weight.absmax${m.doubleQuant ? '.q8' : ''}`;
  if (!scales) throw new TlabError(`${where}: '${name}' is missing (${m.format}, block size ${m.blockSize})`);
  const expected = weights / m.blockSize;
  if (scales.data.length !== expected) {
    const made = weights / scales.data.length;
    throw new TlabError(
      `${where}: '${name}' holds ${scales.data.length} block scales for ${weights} weights, so it was quantized with block size ${Number.isInteger(made) ? made : `${made.toFixed(2)} (none)`}; the model's 4-bit base uses block size ${m.blockSize}`,
      "quantize the base again with that block size (strategy.quant_block_size), or set quant_block_size to the checkpoint's",
    );
  }
}

/** Writes a 4-bit base (the quantized modules' tensors) with its format and block size in the metadata. */
export function saveQuantizedBase(
  path: string,
  params: ReadonlyMap<string, HostTensor>,
  modules: Iterable<QuantModule>,
): void {
  const list = [...modules];
  const out = new Map<string, HostTensor>();
  for (const [k, v] of params) if (isQuantParam(k)) out.set(k, v);
  const first = list[0];
  writeSafetensors(path, out, {
    format: 'tlab-4bit',
    quant_format: first?.format ?? '',
    block_size: String(first?.blockSize ?? 0),
    double_quant: String(first?.doubleQuant ?? false),
  });
}

/** Reads a 4-bit base written by saveQuantizedBase and checks it against the model's quantized modules. */
export function loadQuantizedBase(path: string, modules: Iterable<QuantModule>): Map<string, HostTensor> {
  const header = readSafetensorsHeader(path);
  const list = [...modules];
  const meta = header.metadata;
  if (meta.format !== 'tlab-4bit')
    throw new TlabError(
      `${path}: not a 4-bit base (metadata format '${meta.format ?? ''}', expected tlab-4bit)`,
    );
  for (const m of list) {
    if (meta.quant_format !== m.format)
      throw new TlabError(
        `${path}: quantized as ${meta.quant_format}; the model's 4-bit base is ${m.format}`,
      );
    if (Number(meta.block_size) !== m.blockSize)
      throw new TlabError(
        `${path}: quantized with block size ${meta.block_size}; the model's 4-bit base uses block size ${m.blockSize}`,
        "quantize the base again with that block size, or set strategy.quant_block_size to the checkpoint's",
      );
  }
  const tensors = readSafetensors(path);
  for (const m of list) checkQuantizedModule(m, (n) => tensors.get(n), path);
  return tensors;
}
