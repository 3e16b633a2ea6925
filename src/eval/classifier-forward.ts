/**
 * Forward passes of a classifier folder (image classifier or sequence classifier): logits over its own labels for
 * batches of preprocessed images or token sequences, with the class names its config.json gives (id2label). One
 * program per batch shape is compiled and kept; a short last batch is padded and its rows dropped. The classifier
 * backend (its answers) and task features (source-model probabilities for LEEP/NCE) both read logits from here.
 */
import { Graph, type Value } from '../engine/ir/graph.ts';
import { Program } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { ModelFolder } from '../models/hf/model-folder.ts';
import type { ImageClassifier, SequenceClassifier } from '../models/types.ts';
import { ParamBuilder } from '../nn/module.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import { ImagePixels, visionPreprocessorFor } from './images.ts';
import { bucketLength } from './programs.ts';

export type ClassifierFolder = ModelFolder & { kind: 'image-classifier' | 'sequence-classifier' };

export function isClassifierFolder(folder: ModelFolder): folder is ClassifierFolder {
  return folder.kind === 'image-classifier' || folder.kind === 'sequence-classifier';
}

/** The class names of a classifier config in index order (id2label), LABEL_i where it names none. */
export function classifierLabels(folder: ClassifierFolder): string[] {
  const n = folder.model.numLabels;
  const names = folder.config.id2label ?? {};
  return Array.from({ length: n }, (_, i) => names[String(i)] ?? `LABEL_${i}`);
}

/** A message as the classifier reads it: its role and text parts (image parts are read as pixels, not text). */
export interface ClassifierMessage {
  role: 'system' | 'user' | 'assistant';
  content: readonly ({ type: 'text'; text: string } | { type: 'image' })[];
}

/**
 * A sequence classifier's input ids: the messages through the chat template with its generation prompt when the
 * tokenizer has one, else their text parts one per line — exactly as training encodes prompts
 * (train/run-classifier-training.ts classifierPromptIds).
 */
export function classifierPromptIds(
  tokenizer: TextTokenizer,
  messages: readonly ClassifierMessage[],
): number[] {
  if (tokenizer.hasChatTemplate)
    return tokenizer.encodeChat(
      messages.map((m) => ({
        role: m.role,
        content: m.content.flatMap((p) =>
          p.type === 'text' ? [{ type: 'text' as const, text: p.text }] : [],
        ),
      })),
      { addGenerationPrompt: true },
    );
  return tokenizer.encode(
    messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'text' ? [p.text] : []))).join('\n'),
  );
}

export interface ClassifierRunnerOptions {
  /** Rows per forward pass; default 16. */
  batchSize?: number;
}

export class ClassifierRunner {
  readonly labels: string[];
  readonly batchSize: number;
  /** Image classifiers: preprocessed pixels of files and bytes (the folder's processor, else the ViT default). */
  readonly pixels: ImagePixels | null;
  private readonly programs = new Map<string, Promise<Program>>();

  constructor(
    readonly folder: ClassifierFolder,
    options: ClassifierRunnerOptions = {},
  ) {
    this.labels = classifierLabels(folder);
    this.batchSize = options.batchSize ?? 16;
    this.pixels =
      folder.kind === 'image-classifier'
        ? new ImagePixels(
            folder.model.encoder,
            visionPreprocessorFor(folder.preprocessorConfig, folder.model.encoder),
          )
        : null;
  }

  get numLabels(): number {
    return this.labels.length;
  }

  /** The tokenizer of a sequence classifier (a TlabError naming the folder without one). */
  tokenizer(): TextTokenizer {
    if (!this.folder.tokenizer)
      throw new TlabError(`${this.folder.dir}: no tokenizer.json; a sequence classifier needs its tokenizer`);
    return this.folder.tokenizer;
  }

  /** The padding id of token batches: config pad_token_id (what the head looks past), else the tokenizer's. */
  padId(): number {
    const model = this.folder.model as SequenceClassifier;
    const t = this.tokenizer();
    return model.padTokenId ?? t.padId ?? t.eosId ?? 0;
  }

  /** Logits [N, C] (row-major) of preprocessed images [C, H, W]. */
  async imageLogits(images: readonly Float32Array[]): Promise<Float32Array> {
    if (this.folder.kind !== 'image-classifier')
      throw new TlabError(`${this.folder.dir}: a ${this.folder.kind} reads text, not images`);
    const classifier: ImageClassifier = this.folder.model;
    const { numChannels: c, imageSize: s } = classifier.encoder;
    const b = this.batchSize;
    const size = c * s * s;
    const program = await this.program(`image:${b}`, (graph, pb) => ({
      logits: classifier.forward(pb, graph.input('pixel_values', 'float32', [b, c, s, s])).logits,
    }));
    return this.batches(images.length, async (start, rows) => {
      const data = new Float32Array(b * size);
      for (let i = 0; i < rows; i++) {
        const px = images[start + i];
        if (px.length !== size)
          throw new TlabError(`image ${start + i}: ${px.length} values, the classifier takes ${c}x${s}x${s}`);
        data.set(px, i * size);
      }
      return program.run({ pixel_values: { dtype: 'float32', shape: [b, c, s, s], data } });
    });
  }

  /** Logits [N, C] of token sequences (each cut to its last maxPositions tokens). */
  async textLogits(sequences: readonly (readonly number[])[]): Promise<Float32Array> {
    if (this.folder.kind !== 'sequence-classifier')
      throw new TlabError(`${this.folder.dir}: a ${this.folder.kind} reads images, not text`);
    const classifier: SequenceClassifier = this.folder.model;
    const max = classifier.decoder.maxPositions;
    const pad = BigInt(this.padId());
    const b = this.batchSize;
    return this.batches(sequences.length, async (start, rows) => {
      const batch = sequences.slice(start, start + rows).map((r) => r.slice(Math.max(0, r.length - max)));
      if (batch.some((r) => r.length === 0)) throw new TlabError(`sequence ${start}: no tokens`);
      const len = bucketLength(Math.max(...batch.map((r) => r.length)), 16, max);
      const program = await this.program(`text:${b}x${len}`, (graph, pb) => ({
        logits: classifier.forward(pb, {
          ids: graph.input('ids', 'int64', [b, len]),
          attentionMask: graph.input('attention_mask', 'int64', [b, len]),
        }).logits,
      }));
      const ids = new BigInt64Array(b * len).fill(pad);
      const mask = new BigInt64Array(b * len);
      for (let r = 0; r < b; r++) {
        const row = batch[r] ?? [];
        // Padding rows read one pad token, so no row is all masked.
        if (row.length === 0) mask[r * len] = 1n;
        row.forEach((id, t) => {
          ids[r * len + t] = BigInt(id);
          mask[r * len + t] = 1n;
        });
      }
      return program.run({
        ids: { dtype: 'int64', shape: [b, len], data: ids },
        attention_mask: { dtype: 'int64', shape: [b, len], data: mask },
      });
    });
  }

  async release(): Promise<void> {
    const all = [...this.programs.values()];
    this.programs.clear();
    for (const p of all) await (await p.catch(() => null))?.release();
  }

  /** Runs `run(start, rows)` per batch and gathers the real rows' logits. */
  private async batches(
    n: number,
    run: (start: number, rows: number) => Promise<Record<string, HostTensor>>,
  ): Promise<Float32Array> {
    const c = this.numLabels;
    const out = new Float32Array(n * c);
    for (let start = 0; start < n; start += this.batchSize) {
      const rows = Math.min(this.batchSize, n - start);
      const r = await run(start, rows);
      out.set((r.logits.data as Float32Array).subarray(0, rows * c), start * c);
    }
    return out;
  }

  private program(
    key: string,
    build: (graph: Graph, pb: ParamBuilder) => Record<string, Value>,
  ): Promise<Program> {
    let p = this.programs.get(key);
    if (!p) {
      const graph = new Graph();
      const pb = new ParamBuilder(graph);
      const outputs = build(graph, pb);
      const bind = new Map<string, HostTensor>();
      for (const name of pb.specs.keys()) {
        const t = this.folder.weights.get(name);
        if (!t) throw new TlabError(`${this.folder.dir}: the weights lack '${name}'`);
        bind.set(name, t);
      }
      p = Program.compile(graph, { outputs, bind, name: `classifier:${key}` });
      this.programs.set(key, p);
      p.catch(() => this.programs.delete(key));
    }
    return p;
  }
}

/** Row-wise softmax of logits [N, C] in float64 (max-shifted). */
export function softmaxRows(logits: Float32Array, cols: number): Float64Array {
  const rows = logits.length / cols;
  const out = new Float64Array(logits.length);
  for (let i = 0; i < rows; i++) {
    let max = -Infinity;
    for (let k = 0; k < cols; k++) max = Math.max(max, logits[i * cols + k]);
    let sum = 0;
    for (let k = 0; k < cols; k++) {
      const e = Math.exp(logits[i * cols + k] - max);
      out[i * cols + k] = e;
      sum += e;
    }
    for (let k = 0; k < cols; k++) out[i * cols + k] /= sum;
  }
  return out;
}

/** Index of each row's largest value (the first on ties). */
export function argmaxRows(values: Float32Array, cols: number): number[] {
  const rows = values.length / cols;
  return Array.from({ length: rows }, (_, i) => {
    let best = 0;
    for (let k = 1; k < cols; k++) if (values[i * cols + k] > values[i * cols + best]) best = k;
    return best;
  });
}
