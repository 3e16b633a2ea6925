/**
 * Per-layer representations of a task split from one model, written to disk as they are computed:
 *   <dir>/layer_<l>.safetensors   `hidden` [N, D] (or [N, P, D] for image patches) float32, `kept` int32: the rows
 *                                 left after removing exact duplicates (first occurrences, ascending)
 *   <dir>/labels.json, labels_<name>.npy   the label sets (class names and integer codes)
 *   <dir>/metadata.json           model, task, split, shots, token, states, layers, N, D, duplicates per layer, uids
 * Tokens: the last prompt token, the mean over prompt tokens, the first token (decoders, a VLM with its images),
 * or every image patch of a VLM's vision tower (each layer) or of its projector output. States: the residual
 * stream after each block (Hugging Face hidden states; the last after the final norm) or each block's normalised
 * input (LayerNorm/RMSNorm with its learned gain, as the representation-landscape pipeline hooks). Batches are
 * appended to one temporary file per layer, so memory holds one batch of every layer plus one layer at the end.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTaskSplit, openTask } from '../data/read.ts';
import type { TaskExample } from '../data/task-format.ts';
import { readSafetensors, writeSafetensors } from '../engine/io/safetensors.ts';
import { Graph, type Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import { Program } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { ForwardRunner, type Pooling } from '../eval/forward.ts';
import { ImagePixels, visionPreprocessorFor } from '../eval/images.ts';
import { encodeTaskPrompt } from '../eval/task-prompt.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import { writeNpy } from '../metrics/io/npy.ts';
import type { ModelFolder } from '../models/hf/model-folder.ts';
import type { DecoderLm, Vlm } from '../models/types.ts';
import { expandImagePlaceholders } from '../models/vlm.ts';
import { ParamBuilder } from '../nn/module.ts';
import { tempPathFor, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { readJsonObject } from '../util/json-file.ts';
import { loadConditionModel } from './model-source.ts';
import { findDuplicates } from './points.ts';
import { type LabelSet, labelSets, withShots } from './prompts.ts';

export const TOKENS = ['last', 'mean', 'first', 'vision-patches', 'projector-patches'] as const;
export type TokenChoice = (typeof TOKENS)[number];
export const STATES = ['residual', 'norm-input'] as const;
export type StateChoice = (typeof STATES)[number];

export interface ExtractSpec {
  model: string;
  adapter?: string;
  task: string;
  split: string;
  /** First N examples of the split. */
  limit?: number;
  /** Few-shot turns before each question (undefined: as built). */
  shots?: number;
  /** Split to draw shots from when the examples have fewer built ones. */
  shotSplit?: string;
  token?: TokenChoice;
  states?: StateChoice;
  /** Layer indices (0 = embeddings; negative from the end); default all. */
  layers?: readonly number[];
  /** Label sets: label, answer, field:<name>. */
  labels?: readonly string[];
  batchSize?: number;
}

export interface LayerRecord {
  layer: number;
  file: string;
  /** Exact duplicate rows in this layer (not counted in `kept`). */
  duplicates: number;
}

export interface RepresentationsManifest {
  format: 'transferlab-geometry-representations/1';
  model: string;
  adapter: string | null;
  task: string;
  split: string;
  shots: number | null;
  token: TokenChoice;
  states: StateChoice;
  n: number;
  dims: number;
  /** Patches per sample for patch tokens (else null). */
  patches: number | null;
  /** Patch grid side (patches = grid²) for patch tokens. */
  grid: number | null;
  layers: LayerRecord[];
  labels: string[];
  uids: string[];
  /** Images each sample's prompt carried (VLM decoder states). */
  imagesPerPrompt: number;
  fingerprint: string;
}

export type ExtractProgress = (done: number, total: number) => void;

/** One layer of saved representations: all rows (float64), and the distinct ones. */
export interface LayerData {
  layer: number;
  x: Matrix;
  kept: Int32Array;
  /** [N, P, D] patch tensors keep their patch axis here (x is then N×(P·D)). */
  patches: number | null;
}

const LAYER_FILE = (l: number) => `layer_${String(l).padStart(3, '0')}.safetensors`;

function isVlmFolder(f: ModelFolder): f is ModelFolder & { kind: 'vlm' } {
  return f.kind === 'vlm';
}

function decoderOf(folder: ModelFolder, where: string): DecoderLm {
  if (folder.kind === 'causal-lm' || folder.kind === 'vlm') return folder.model;
  if (folder.kind === 'sequence-classifier') return folder.model.decoder;
  throw new TlabError(`${where}: a ${folder.kind} has no decoder; token '${'last'}' needs a language model`);
}

/** Host-side input norm of block `layer` (γ·norm(h) [+ β]), for 'norm-input' states. */
function normFor(
  folder: ModelFolder,
  decoder: DecoderLm,
  layer: number,
): ((v: Float32Array, o: number, d: number) => void) | null {
  if (layer >= decoder.numLayers) return null; // the last hidden state is already after the final norm
  const text = folder.kind === 'vlm' ? folder.model.decoder : decoder; // a VLM's own modelType is 'llava'
  const cfg = (
    folder.kind === 'vlm'
      ? (folder.config as unknown as { text_config: Record<string, unknown> }).text_config
      : folder.config
  ) as Record<string, unknown>;
  const prefix = folder.kind === 'vlm' ? 'language_model.' : '';
  const get = (name: string) => folder.weights.get(prefix + name)?.data as Float32Array | undefined;
  if (text.modelType === 'gpt2') {
    const g = get(`h.${layer}.ln_1.weight`);
    const b = get(`h.${layer}.ln_1.bias`);
    const eps = typeof cfg.layer_norm_epsilon === 'number' ? cfg.layer_norm_epsilon : 1e-5;
    if (!g || !b) throw new TlabError(`${folder.dir}: no ln_1 weights for block ${layer}`);
    return (v, o, d) => {
      let mean = 0;
      for (let j = 0; j < d; j++) mean += v[o + j];
      mean /= d;
      let vr = 0;
      for (let j = 0; j < d; j++) vr += (v[o + j] - mean) ** 2;
      const inv = 1 / Math.sqrt(vr / d + eps);
      for (let j = 0; j < d; j++) v[o + j] = (v[o + j] - mean) * inv * g[j] + b[j];
    };
  }
  const g = get(`model.layers.${layer}.input_layernorm.weight`);
  const eps = typeof cfg.rms_norm_eps === 'number' ? cfg.rms_norm_eps : 1e-6;
  if (!g) throw new TlabError(`${folder.dir}: no input_layernorm weight for block ${layer}`);
  return (v, o, d) => {
    let ms = 0;
    for (let j = 0; j < d; j++) ms += v[o + j] * v[o + j];
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let j = 0; j < d; j++) v[o + j] = v[o + j] * inv * g[j];
  };
}

/** Appends each layer's batch to its own temporary raw float32 file. */
class LayerSink {
  private readonly fds = new Map<number, number>();
  readonly paths = new Map<number, string>();
  constructor(
    private readonly dir: string,
    layers: readonly number[],
  ) {
    for (const l of layers) {
      const p = tempPathFor(join(dir, LAYER_FILE(l)));
      this.paths.set(l, p);
      this.fds.set(l, openSync(p, 'w'));
    }
  }
  write(layer: number, data: Float32Array): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let at = 0; at < bytes.length; )
      at += writeSync(this.fds.get(layer) as number, bytes, at, bytes.length - at);
  }
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
  discard(): void {
    this.close();
    for (const p of this.paths.values()) rmSync(p, { force: true });
  }
  /** Reads one layer back. */
  read(layer: number, count: number): Float32Array {
    const out = new Float32Array(count);
    const fd = openSync(this.paths.get(layer) as string, 'r');
    try {
      const bytes = new Uint8Array(out.buffer);
      for (let at = 0; at < bytes.length; ) {
        const n = readSync(fd, bytes, at, Math.min(1 << 30, bytes.length - at), at);
        if (n === 0) throw new TlabError(`${this.dir}: layer ${layer} data ended early`);
        at += n;
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }
}

function normaliseLayers(requested: readonly number[] | undefined, count: number, where: string): number[] {
  if (!requested) return Array.from({ length: count }, (_, i) => i);
  return [
    ...new Set(
      requested.map((l) => {
        const i = l < 0 ? count + l : l;
        if (!Number.isInteger(i) || i < 0 || i >= count)
          throw new TlabError(
            `${where}: layer ${l} is out of range; valid: 0..${count - 1} (or -1..-${count})`,
          );
        return i;
      }),
    ),
  ].sort((a, b) => a - b);
}

async function examplesOf(
  spec: ExtractSpec,
  where: string,
): Promise<{ taskDir: string; examples: TaskExample[] }> {
  const task = openTask(spec.task);
  let examples = await loadTaskSplit(task.dir, spec.split);
  if (spec.limit !== undefined) examples = examples.slice(0, spec.limit);
  if (examples.length === 0) throw new TlabError(`${where}: split '${spec.split}' of ${task.dir} is empty`);
  const pool = spec.shotSplit ? await loadTaskSplit(task.dir, spec.shotSplit) : undefined;
  examples = examples.map((e) => withShots(e, { shots: spec.shots, pool, where: task.dir }));
  return { taskDir: task.dir, examples };
}

/** Extracts and saves the representations of one condition into `dir` (replacing what was there). */
export async function extractRepresentations(
  spec: ExtractSpec,
  dir: string,
  options: { fingerprint?: string; onProgress?: ExtractProgress; where?: string } = {},
): Promise<RepresentationsManifest> {
  const where = options.where ?? spec.model;
  const token = spec.token ?? 'last';
  const states = spec.states ?? 'residual';
  const { taskDir, examples } = await examplesOf(spec, where);
  const sets = labelSets(spec.labels ?? [], examples, taskDir);
  const folder = loadConditionModel({ model: spec.model, adapter: spec.adapter });
  mkdirSync(dir, { recursive: true });
  const batch = spec.batchSize ?? 8;
  const n = examples.length;
  let result: {
    layers: number[];
    dims: number;
    patches: number | null;
    grid: number | null;
    imagesPerPrompt: number;
    sink: LayerSink;
  };
  if (token === 'vision-patches' || token === 'projector-patches') {
    if (!isVlmFolder(folder))
      throw new TlabError(`${where}: token '${token}' needs a VLM; ${spec.model} is a ${folder.kind}`);
    result = await patchStates(
      folder,
      examples,
      taskDir,
      token,
      spec.layers,
      dir,
      batch,
      options.onProgress,
      where,
    );
  } else
    result = await decoderStates(
      folder,
      examples,
      taskDir,
      token,
      states,
      spec.layers,
      dir,
      batch,
      options.onProgress,
      where,
    );
  const { sink, dims, patches } = result;
  sink.close();
  const records: LayerRecord[] = [];
  try {
    for (const l of result.layers) {
      const width = (patches ?? 1) * dims;
      const data = sink.read(l, n * width);
      const kept =
        patches === null
          ? findDuplicates(matrix(n, dims, data)).kept
          : Int32Array.from({ length: n }, (_, i) => i);
      const shape = patches === null ? [n, dims] : [n, patches, dims];
      writeSafetensors(join(dir, LAYER_FILE(l)), {
        hidden: { dtype: 'float32', shape, data },
        kept: { dtype: 'int32', shape: [kept.length], data: kept },
      });
      rmSync(sink.paths.get(l) as string, { force: true });
      records.push({ layer: l, file: LAYER_FILE(l), duplicates: n - kept.length });
    }
  } catch (error) {
    sink.discard();
    throw error;
  }
  const labels: Record<string, { classes: string[]; values: number[] }> = {};
  for (const s of sets) {
    labels[s.name] = { classes: s.classes, values: Array.from(s.values) };
    writeNpy(join(dir, `labels_${s.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.npy`), [n], s.values);
  }
  writeJsonAtomic(join(dir, 'labels.json'), labels);
  const manifest: RepresentationsManifest = {
    format: 'transferlab-geometry-representations/1',
    model: resolve(spec.model),
    adapter: spec.adapter ? resolve(spec.adapter) : null,
    task: taskDir,
    split: spec.split,
    shots: spec.shots ?? null,
    token,
    states,
    n,
    dims,
    patches,
    grid: result.grid,
    layers: records,
    labels: sets.map((s) => s.name),
    uids: examples.map((e) => e.uid),
    imagesPerPrompt: result.imagesPerPrompt,
    fingerprint: options.fingerprint ?? '',
  };
  writeJsonAtomic(join(dir, 'metadata.json'), manifest); // written last: its presence marks a complete folder
  return manifest;
}

async function decoderStates(
  folder: ModelFolder,
  examples: readonly TaskExample[],
  taskDir: string,
  token: 'last' | 'mean' | 'first',
  states: StateChoice,
  requested: readonly number[] | undefined,
  dir: string,
  batch: number,
  onProgress: ExtractProgress | undefined,
  where: string,
) {
  const decoder = decoderOf(folder, where);
  if (!folder.tokenizer)
    throw new TlabError(`${folder.dir}: no tokenizer.json; prompts need the model's tokenizer`);
  const tokenizer = folder.tokenizer;
  const layers = normaliseLayers(requested, decoder.numLayers + 1, where);
  const vlm = isVlmFolder(folder) ? folder.model : null;
  const pixels = vlm
    ? new ImagePixels(vlm.encoder, visionPreprocessorFor(folder.preprocessorConfig, vlm.encoder))
    : null;
  const ids: number[][] = [];
  const images: Float32Array[][] = [];
  let imagesPerPrompt = 0;
  for (const e of examples) {
    const p = encodeTaskPrompt(tokenizer, e, taskDir, { images: vlm ? 'keep' : 'drop' });
    let row = p.ids;
    if (vlm) {
      row = expandImagePlaceholders(row, vlm.imageTokenId, vlm.imageTokens);
      images.push(await Promise.all(p.images.map((f) => (pixels as ImagePixels).file(f))));
      imagesPerPrompt = Math.max(imagesPerPrompt, p.images.length);
    }
    if (row.length > decoder.maxPositions) {
      if (vlm)
        throw new TlabError(
          `example ${e.uid}: ${row.length} tokens with its images, more than the context of ${decoder.maxPositions}`,
        );
      row = row.slice(row.length - decoder.maxPositions); // the question is at the end
    }
    ids.push(row);
  }
  // a sequence classifier's decoder ignores its `score.*` head
  const weights =
    folder.kind === 'sequence-classifier'
      ? new Map([...folder.weights].filter(([name]) => !name.startsWith('score.')))
      : folder.weights;
  const runner = new ForwardRunner(vlm ?? decoder, weights, {
    padId: tokenizer.padId ?? tokenizer.eosId ?? 0,
  });
  const d = decoder.hiddenSize;
  const norms = new Map(layers.map((l) => [l, states === 'norm-input' ? normFor(folder, decoder, l) : null]));
  const pooling: Pooling = token;
  const perToken = token === 'mean' && states === 'norm-input';
  const sink = new LayerSink(dir, layers);
  try {
    for (let start = 0; start < ids.length; start += batch) {
      const rows = ids.slice(start, start + batch);
      const imgs = vlm ? images.slice(start, start + batch) : undefined;
      const b = rows.length;
      if (perToken) {
        // the norm does not commute with the mean: normalise every token, then average
        const r = await runner.run({ ids: rows, images: imgs }, { hiddenStates: layers });
        for (const l of layers) {
          const h = r.hiddenStates!.get(l)!.data as Float32Array;
          const norm = norms.get(l);
          const out = new Float32Array(b * d);
          rows.forEach((row, i) => {
            for (let t = 0; t < row.length; t++) {
              const o = (i * r.length + t) * d;
              norm?.(h, o, d);
              for (let j = 0; j < d; j++) out[i * d + j] += h[o + j] / row.length;
            }
          });
          sink.write(l, out);
        }
      } else {
        const r = await runner.run({ ids: rows, images: imgs }, { pooled: [pooling], poolLayers: layers });
        for (const l of layers) {
          const v = Float32Array.from(r.pooled!.get(pooling)!.get(l)!.data as Float32Array);
          const norm = norms.get(l);
          if (norm) for (let i = 0; i < b; i++) norm(v, i * d, d);
          sink.write(l, v);
        }
      }
      onProgress?.(Math.min(start + batch, ids.length), ids.length);
    }
  } catch (error) {
    sink.discard();
    throw error;
  } finally {
    await runner.release();
  }
  return { layers, dims: d, patches: null, grid: null, imagesPerPrompt, sink };
}

/** One sample per example: its first image's patches at every vision layer, or after the projector. */
async function patchStates(
  folder: ModelFolder & { kind: 'vlm' },
  examples: readonly TaskExample[],
  taskDir: string,
  token: 'vision-patches' | 'projector-patches',
  requested: readonly number[] | undefined,
  dir: string,
  batch: number,
  onProgress: ExtractProgress | undefined,
  where: string,
) {
  const vlm: Vlm = folder.model;
  const enc = vlm.encoder;
  const pixels = new ImagePixels(enc, visionPreprocessorFor(folder.preprocessorConfig, enc));
  const files = examples.map((e) => {
    const image = e.messages.flatMap((m) => m.content).find((p) => p.type === 'image');
    if (image?.type !== 'image') throw new TlabError(`${where}: example ${e.uid} has no image`);
    return join(taskDir, image.image);
  });
  const patches = enc.numPatches;
  const graph = new Graph();
  const pb = new ParamBuilder(graph);
  const c = enc.numChannels;
  const s = enc.imageSize;
  const input = graph.input('pixel_values', 'float32', [batch, c, s, s]);
  const outputs: Record<string, Value> = {};
  let layers: number[];
  let dims: number;
  if (token === 'vision-patches') {
    const out = pb.scope('vision_tower', () => enc.forward(pb, input));
    layers = normaliseLayers(requested, out.hiddenStates.length, where);
    for (const l of layers) outputs[`h${l}`] = T.slice(out.hiddenStates[l], [1], [1], [1 + patches]);
    dims = enc.hiddenSize;
  } else {
    const f = vlm.imageFeatures(pb, input);
    layers = normaliseLayers(requested ?? [0], 1, where);
    const offset = vlm.imageTokens - patches; // 'full' keeps the CLS token first
    outputs.h0 = T.slice(f, [1], [offset], [offset + patches]);
    dims = vlm.hiddenSize;
  }
  const weights = new Map([...pb.specs.keys()].map((name) => [name, folder.weights.get(name) as HostTensor]));
  const program = await Program.compile(graph, { outputs, bind: weights });
  const sink = new LayerSink(dir, layers);
  try {
    for (let start = 0; start < examples.length; start += batch) {
      const rows = files.slice(start, start + batch);
      const data = new Float32Array(batch * c * s * s);
      for (const [i, f] of rows.entries()) data.set(await pixels.file(f), i * c * s * s);
      const r = await program.run({ pixel_values: { dtype: 'float32', shape: [batch, c, s, s], data } });
      for (const l of layers)
        sink.write(l, (r[`h${l}`].data as Float32Array).subarray(0, rows.length * patches * dims));
      onProgress?.(Math.min(start + batch, examples.length), examples.length);
    }
  } catch (error) {
    sink.discard();
    throw error;
  } finally {
    await program.release();
  }
  return { layers, dims, patches, grid: Math.round(Math.sqrt(patches)), imagesPerPrompt: 1, sink };
}

/** Reads a saved representations folder. */
export function openRepresentations(dir: string): {
  manifest: RepresentationsManifest;
  labels: LabelSet[];
  layer(l: number): LayerData;
} {
  const path = join(dir, 'metadata.json');
  if (!existsSync(path))
    throw new TlabError(`${dir}: no metadata.json (not a complete representations folder)`);
  const manifest = readJsonObject(path) as unknown as RepresentationsManifest;
  const raw = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as Record<
    string,
    { classes: string[]; values: number[] }
  >;
  const labels = Object.entries(raw).map(([name, v]) => ({
    name,
    classes: v.classes,
    values: Int32Array.from(v.values),
  }));
  return {
    manifest,
    labels,
    layer(l: number): LayerData {
      const rec = manifest.layers.find((r) => r.layer === l);
      if (!rec)
        throw new TlabError(
          `${dir}: no layer ${l}`,
          `layers: ${manifest.layers.map((r) => r.layer).join(', ')}`,
        );
      const t = readSafetensors(join(dir, rec.file));
      const h = t.get('hidden') as HostTensor;
      const width = h.shape.slice(1).reduce((a, b) => a * b, 1);
      return {
        layer: l,
        x: matrix(h.shape[0], width, h.data as Float32Array),
        kept: t.get('kept')!.data as Int32Array,
        patches: h.shape.length === 3 ? h.shape[1] : null,
      };
    },
  };
}

/** Replaces a folder atomically enough for reruns: a finished extraction is moved into place. */
export function replaceFolder(tmp: string, final: string): void {
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
}
