/**
 * Rotary position embeddings as Hugging Face computes them (modeling_rope_utils.py): inverse frequencies for the
 * rope types "default", "linear", "dynamic" and "llama3", then cos/sin tables in the rotate-half layout (frequency i
 * pairs dimensions i and i + D/2). Tables are computed on the host in float64 and become graph constants.
 */
import type { Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { TlabError } from '../util/errors.ts';

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

/** rope_scaling / rope_parameters after normalisation (BC `type` → `rope_type`, theta folded in). */
export interface RopeSettings {
  type: RopeType;
  theta: number;
  factor: number;
  /** llama3 */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** llama3 (required) and dynamic (optional; else max_position_embeddings). */
  originalMaxPositions?: number;
}

/** The fields of a Llama-family config.json that decide RoPE (both the old and the transformers-5 spelling). */
export interface RopeConfigFields {
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  rope_parameters?: Record<string, unknown> | null;
  max_position_embeddings: number;
}

/**
 * Normalises rope_theta/rope_scaling (transformers 4) or rope_parameters (transformers 5) into RopeSettings.
 * `where` names the config file for errors.
 */
export function ropeSettings(config: RopeConfigFields, where: string, defaultTheta = 10000): RopeSettings {
  const params = config.rope_parameters ?? null;
  const scaling = config.rope_scaling ?? null;
  const source = params ?? scaling;
  const key = params ? 'rope_parameters' : 'rope_scaling';
  const num = (name: string): number | undefined => {
    const v = source?.[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new TlabError(`${where}: ${key}.${name}: expected a number, found ${JSON.stringify(v)}`);
    return v;
  };
  const theta = num('rope_theta') ?? config.rope_theta ?? defaultTheta;
  const rawType = (source?.rope_type ?? source?.type ?? 'default') as unknown;
  if (typeof rawType !== 'string' || !(ROPE_TYPES as readonly string[]).includes(rawType)) {
    throw new TlabError(
      `${where}: ${key}.rope_type: '${String(rawType)}' is not supported; supported: ${ROPE_TYPES.join(', ')}`,
      'yarn, longrope, ntk and mrope (Qwen2-VL) change more than the frequency table and are not implemented',
    );
  }
  const type = rawType as RopeType;
  const partial = num('partial_rotary_factor');
  if (partial !== undefined && partial !== 1)
    throw new TlabError(`${where}: ${key}.partial_rotary_factor: only 1 is supported, found ${partial}`);
  const need = (name: string): number => {
    const v = num(name);
    if (v === undefined)
      throw new TlabError(`${where}: ${key}.${name}: missing (required by rope_type ${type})`);
    return v;
  };
  if (type === 'default') return { type, theta, factor: 1 };
  const factor = need('factor');
  if (type === 'linear') return { type, theta, factor };
  if (type === 'dynamic')
    return { type, theta, factor, originalMaxPositions: num('original_max_position_embeddings') };
  return {
    type,
    theta,
    factor,
    lowFreqFactor: need('low_freq_factor'),
    highFreqFactor: need('high_freq_factor'),
    originalMaxPositions: need('original_max_position_embeddings'),
  };
}

/**
 * Inverse frequencies [dim/2]. `seqLength` is the longest position + 1 the graph will see (dynamic NTK scaling
 * recomputes the base when it exceeds the original context, as Hugging Face's dynamic_rope_update does).
 */
export function ropeInverseFrequencies(
  rope: RopeSettings,
  dim: number,
  maxPositions: number,
  seqLength: number,
): number[] {
  let base = rope.theta;
  if (rope.type === 'dynamic') {
    const original = rope.originalMaxPositions ?? maxPositions;
    if (seqLength > original)
      base *= ((rope.factor * seqLength) / original - (rope.factor - 1)) ** (dim / (dim - 2));
  }
  const inv = Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
  if (rope.type === 'linear') return inv.map((f) => f / rope.factor);
  if (rope.type !== 'llama3') return inv;
  const old = rope.originalMaxPositions!;
  const low = rope.lowFreqFactor!;
  const high = rope.highFreqFactor!;
  const lowWavelen = old / low;
  const highWavelen = old / high;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / rope.factor;
    const smooth = (old / wavelen - low) / (high - low);
    return ((1 - smooth) * f) / rope.factor + smooth * f;
  });
}

/** cos/sin tables [P, dim] for positions 0..P-1 in the rotate-half layout (row p: cos(p·f_(j mod dim/2))). */
export function ropeTables(invFreq: readonly number[], positions: number): { cos: number[]; sin: number[] } {
  const half = invFreq.length;
  const cos: number[] = [];
  const sin: number[] = [];
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < 2 * half; j++) {
      const angle = p * invFreq[j % half];
      cos.push(Math.cos(angle));
      sin.push(Math.sin(angle));
    }
  }
  return { cos, sin };
}

/**
 * cos/sin [1, 1, T, dim] for the T query positions: 0..T-1 without a cache, else the cache's `positions`
 * gathered from tables over its maximum length ([B, 1, T, dim] when the cache has per-row positions [B, T]).
 */
export function ropeForPositions(
  graph: Value['graph'],
  invFreq: readonly number[],
  dtype: Value['dtype'],
  t: number,
  cachePositions: { positions: Value; maxLength: number } | null,
): { cos: Value; sin: Value } {
  const dim = 2 * invFreq.length;
  const rows = cachePositions ? cachePositions.maxLength : t;
  const tables = ropeTables(invFreq, rows);
  let cos = T.constant(graph, dtype, [rows, dim], tables.cos);
  let sin = T.constant(graph, dtype, [rows, dim], tables.sin);
  if (cachePositions) {
    cos = T.gather(cos, cachePositions.positions, 0);
    sin = T.gather(sin, cachePositions.positions, 0);
  }
  // Per-row cache positions [B, T] (left-padded batches) give per-row tables [B, 1, T, dim].
  const positions = cachePositions?.positions;
  const lead = positions && positions.rank === 2 ? [positions.shape[0], 1] : [1, 1];
  return { cos: T.reshape(cos, [...lead, t, dim]), sin: T.reshape(sin, [...lead, t, dim]) };
}
