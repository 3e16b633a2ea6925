/**
 * Forward passes of a decoder LM over batches of token sequences: logits, every layer's hidden states, pooled
 * features, and per-token log-probabilities of given targets. Rows are right-padded (the causal mask keeps real
 * tokens blind to padding, and positions stay 0..n-1), lengths are bucketed so batches share compiled programs,
 * and reductions (pooling, last-token logits, target log-probs) run inside the graph so only what was asked for
 * crosses the onnxruntime boundary.
 */
import type { Graph, Value } from '../engine/ir/graph.ts';
import * as T from '../engine/ops/index.ts';
import type { SessionConfig } from '../engine/runtime/session.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { DecoderLm, ImageRows, Vlm, VlmImage } from '../models/types.ts';
import { countImagePlaceholders, isVlm } from '../models/vlm.ts';
import type { ParamBuilder } from '../nn/module.ts';
import { TlabError } from '../util/errors.ts';
import { bucketLength, ModelPrograms } from './programs.ts';

/** How a sequence's hidden states become one vector: its last real token, the mean of real tokens, or the first. */
export type Pooling = 'last' | 'mean' | 'first';
export const POOLINGS: readonly Pooling[] = ['last', 'mean', 'first'];

export interface ForwardRequest {
  /** Logits at every position, [B, T, V] (large: V floats per token). */
  logits?: boolean;
  /** Logits at each row's last real token, [B, V]. */
  lastLogits?: boolean;
  /** Hidden states [B, T, D] of these layers (0 = embeddings, numLayers = final, after the final norm; negative counts from the end); true = all. */
  hiddenStates?: boolean | readonly number[];
  /** Pooled features [B, D] with these poolings, for the layers in `poolLayers`. */
  pooled?: readonly Pooling[];
  /** Layers to pool (same numbering as hiddenStates); default the final one. */
  poolLayers?: readonly number[];
  /** log p(targets[t] | ids[..t]) and whether targets[t] is the argmax, [B, T]; needs `targets`. */
  tokenLogprobs?: boolean;
}

export interface ForwardInput {
  /** Token ids, one row per sequence (any lengths, at most the model's context). */
  ids: readonly (readonly number[])[];
  /** Per row, the token each position should predict (as long as its ids row); for `tokenLogprobs`. */
  targets?: readonly (readonly number[])[];
  /**
   * VLMs: per row, its preprocessed images (pixels [C, H, W], or Qwen2-VL patches with a grid) in the order of the
   * row's image placeholder runs; each image fills `vlm.imageInputs.tokens(image)` placeholder ids of the row
   * (expanded with expandImagePlaceholders).
   */
  images?: readonly (readonly VlmImage[])[];
}

export interface ForwardResult {
  /** Real tokens per row; positions at or past a row's length are padding. */
  lengths: number[];
  /** Padded length T of the tensors below. */
  length: number;
  logits?: HostTensor;
  lastLogits?: HostTensor;
  /** Layer → [B, T, D]. */
  hiddenStates?: Map<number, HostTensor>;
  /** Pooling → layer → [B, D]. */
  pooled?: Map<Pooling, Map<number, HostTensor>>;
  /** [B, T] float32 log-probabilities of the targets (0 at padding). */
  tokenLogprobs?: Float32Array;
  /** [B, T] 1 where the target is the argmax token. */
  greedy?: Uint8Array;
}

export interface ForwardRunnerOptions {
  /** Padded lengths are multiples of this (fewer programs to compile); default 16. */
  lengthStep?: number;
  /** Id written into padding; default 0 (any valid id: padding is masked). */
  padId?: number;
  session?: SessionConfig;
}

export class ForwardRunner {
  readonly programs: ModelPrograms;
  private readonly lengthStep: number;
  private readonly padId: number;

  constructor(
    readonly model: DecoderLm,
    weights: ReadonlyMap<string, HostTensor>,
    options: ForwardRunnerOptions = {},
  ) {
    this.programs = new ModelPrograms(model, weights, options.session);
    this.lengthStep = options.lengthStep ?? 16;
    this.padId = options.padId ?? 0;
  }

  /** Layer numbers normalised to 0..numLayers (negative counts from the end). */
  layerIndices(layers: boolean | readonly number[] | undefined): number[] {
    const n = this.model.numLayers;
    if (layers === undefined || layers === false) return [];
    if (layers === true) return Array.from({ length: n + 1 }, (_, i) => i);
    return layers.map((l) => {
      const i = l < 0 ? n + 1 + l : l;
      if (!Number.isInteger(i) || i < 0 || i > n)
        throw new TlabError(`layer ${l} is out of range; valid: 0..${n} (or -1..-${n + 1})`);
      return i;
    });
  }

  /** One forward pass over all rows as one batch. */
  async run(input: ForwardInput, request: ForwardRequest): Promise<ForwardResult> {
    const rows = input.ids;
    const b = rows.length;
    if (b === 0) throw new TlabError('forward: no sequences given');
    const lengths = rows.map((r) => r.length);
    const longest = Math.max(...lengths);
    const maxPos = this.model.maxPositions;
    lengths.forEach((n, i) => {
      if (n === 0) throw new TlabError(`forward: sequence ${i} is empty`);
      if (n > maxPos)
        throw new TlabError(
          `forward: sequence ${i} has ${n} tokens, more than the model's context of ${maxPos}`,
        );
    });
    if (request.tokenLogprobs) {
      if (!input.targets || input.targets.length !== b)
        throw new TlabError('forward: tokenLogprobs needs one targets row per ids row');
      input.targets.forEach((t, i) => {
        if (t.length !== lengths[i])
          throw new TlabError(`forward: targets row ${i} has ${t.length} tokens, its ids row ${lengths[i]}`);
      });
    }
    const len = bucketLength(longest, this.lengthStep, maxPos);
    const images = this.checkImages(input);
    const imageKey = images ? this.vlm().imageInputs.signature(images) : '';
    const hiddenLayers = this.layerIndices(request.hiddenStates);
    const pooled = [...new Set(request.pooled ?? [])];
    const poolLayers = pooled.length ? this.layerIndices(request.poolLayers ?? [-1]) : [];
    const signature = [
      request.logits ? 'L' : '',
      request.lastLogits ? 'l' : '',
      `h${hiddenLayers.join(',')}`,
      `p${pooled.join(',')}@${poolLayers.join(',')}`,
      request.tokenLogprobs ? 't' : '',
      imageKey,
    ].join('|');
    const program = await this.programs.get(`forward:${b}x${len}:${signature}`, (graph, pb) =>
      this.build(graph, pb, b, len, { ...request, hiddenLayers, pooled, poolLayers, images }),
    );

    const ids = new BigInt64Array(b * len).fill(BigInt(this.padId));
    const mask = new BigInt64Array(b * len);
    rows.forEach((row, r) => {
      for (let t = 0; t < row.length; t++) {
        ids[r * len + t] = BigInt(row[t]);
        mask[r * len + t] = 1n;
      }
    });
    const feeds: Record<string, HostTensor> = {
      ids: { dtype: 'int64', shape: [b, len], data: ids },
      attention_mask: { dtype: 'int64', shape: [b, len], data: mask },
    };
    if (images) Object.assign(feeds, this.vlm().imageInputs.feeds(images));
    const weightsFor = new Set<Pooling>(pooled);
    if (request.lastLogits) weightsFor.add('last');
    for (const mode of weightsFor) feeds[`pool.${mode}`] = poolWeights(mode, lengths, len);
    if (request.tokenLogprobs) {
      const targets = new BigInt64Array(b * len);
      input.targets!.forEach((row, r) => {
        for (let t = 0; t < row.length; t++) targets[r * len + t] = BigInt(row[t]);
      });
      feeds.targets = { dtype: 'int64', shape: [b, len], data: targets };
    }
    const out = await program.run(feeds);

    const result: ForwardResult = { lengths, length: len };
    if (request.logits) result.logits = out.logits;
    if (request.lastLogits) result.lastLogits = out.last_logits;
    if (hiddenLayers.length) result.hiddenStates = new Map(hiddenLayers.map((l) => [l, out[`hidden.${l}`]]));
    if (pooled.length) {
      result.pooled = new Map(
        pooled.map((mode) => [mode, new Map(poolLayers.map((l) => [l, out[`pooled.${mode}.${l}`]]))]),
      );
    }
    if (request.tokenLogprobs) {
      const logp = out.token_logprobs.data as Float32Array;
      const greedy = out.greedy.data as Uint8Array;
      // Padding positions read 0 / not greedy, whatever the graph computed there.
      rows.forEach((row, r) => {
        logp.fill(0, r * len + row.length, (r + 1) * len);
        greedy.fill(0, r * len + row.length, (r + 1) * len);
      });
      result.tokenLogprobs = logp;
      result.greedy = greedy;
    }
    return result;
  }

  /**
   * Pooled features of many sequences, batch by batch: pooling → layer → [N, D] float32, rows in input order.
   */
  async features(
    sequences: readonly (readonly number[])[],
    options: {
      pooling?: readonly Pooling[];
      layers?: readonly number[];
      batchSize?: number;
      /** VLMs: each sequence's images (see ForwardInput.images). */
      images?: readonly (readonly VlmImage[])[];
      onProgress?: (done: number, total: number) => void;
    } = {},
  ): Promise<Map<Pooling, Map<number, HostTensor>>> {
    const pooling = options.pooling ?? ['last'];
    const layers = this.layerIndices(options.layers ?? [-1]);
    const batch = options.batchSize ?? 16;
    const d = this.model.hiddenSize;
    const n = sequences.length;
    const out = new Map<Pooling, Map<number, HostTensor>>(
      pooling.map((p) => [
        p,
        new Map(layers.map((l) => [l, { dtype: 'float32', shape: [n, d], data: new Float32Array(n * d) }])),
      ]),
    );
    for (let start = 0; start < n; start += batch) {
      const rows = sequences.slice(start, start + batch);
      const images = options.images?.slice(start, start + batch);
      const r = await this.run({ ids: rows, images }, { pooled: pooling, poolLayers: layers });
      for (const p of pooling)
        for (const l of layers) {
          const src = r.pooled!.get(p)!.get(l)!.data as Float32Array;
          (out.get(p)!.get(l)!.data as Float32Array).set(src, start * d);
        }
      options.onProgress?.(Math.min(start + batch, n), n);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.programs.release();
  }

  /** The VLM behind this runner, or a TlabError naming the model that takes no images. */
  vlm(): Vlm {
    if (!isVlm(this.model))
      throw new TlabError(`the ${this.model.modelType} model takes no images (text only)`);
    return this.model;
  }

  /**
   * Checks the rows' images against their placeholders (each image fills the token count the model gives it) and
   * returns the rows' images, or null when no row has one.
   */
  private checkImages(input: ForwardInput): ImageRows | null {
    if (!input.images) return null;
    const b = input.ids.length;
    if (input.images.length !== b)
      throw new TlabError(`forward: ${input.images.length} image lists for ${b} rows`);
    if (!input.images.some((r) => r.length > 0)) return null;
    const vlm = this.vlm();
    input.images.forEach((row, r) => {
      const placeholders = countImagePlaceholders(input.ids[r], vlm.imageTokenId);
      const tokens = row.map((image, i) => vlm.imageInputs.tokens(image, `forward: row ${r} image ${i}`));
      const need = tokens.reduce((s, n) => s + n, 0);
      if (placeholders !== need)
        throw new TlabError(
          `forward: row ${r} has ${row.length} image(s) filling ${need} placeholder tokens (${tokens.join(' + ') || '0'}) and ${placeholders} image placeholder tokens (id ${vlm.imageTokenId})`,
          'expand each image placeholder with expandImagePlaceholders() and the image token counts',
        );
    });
    return input.images;
  }

  private build(
    graph: Graph,
    pb: ParamBuilder,
    b: number,
    len: number,
    request: ForwardRequest & {
      hiddenLayers: number[];
      pooled: Pooling[];
      poolLayers: number[];
      images: ImageRows | null;
    },
  ): Record<string, Value> {
    const ids = graph.input('ids', 'int64', [b, len]);
    const attentionMask = graph.input('attention_mask', 'int64', [b, len]);
    let out: ReturnType<DecoderLm['forward']>;
    if (request.images) {
      const vlm = this.vlm();
      out = vlm.forward(pb, { ids, attentionMask, ...vlm.imageInputs.declare(graph, request.images) });
    } else out = this.model.forward(pb, { ids, attentionMask });
    const v = this.model.vocabSize;
    const d = this.model.hiddenSize;
    const weights = new Map<Pooling, Value>();
    const weightsOf = (mode: Pooling): Value => {
      let w = weights.get(mode);
      if (!w) {
        w = T.reshape(graph.input(`pool.${mode}`, 'float32', [b, len]), [b, 1, len]);
        weights.set(mode, w);
      }
      return w;
    };
    // [B, 1, T] x [B, T, X] → [B, X]: a weighted sum over positions, which is every pooling here.
    const pool = (mode: Pooling, x: Value, width: number): Value =>
      T.reshape(T.matmul(weightsOf(mode), x), [b, width]);

    const outputs: Record<string, Value> = {};
    if (request.logits) outputs.logits = out.logits;
    if (request.lastLogits) outputs.last_logits = pool('last', out.logits, v);
    for (const l of request.hiddenLayers) outputs[`hidden.${l}`] = out.hiddenStates[l];
    for (const mode of request.pooled)
      for (const l of request.poolLayers) outputs[`pooled.${mode}.${l}`] = pool(mode, out.hiddenStates[l], d);
    if (request.tokenLogprobs) {
      const targets = graph.input('targets', 'int64', [b, len]);
      const logp = T.logSoftmax(out.logits, -1);
      outputs.token_logprobs = T.reshape(T.gatherElements(logp, T.unsqueeze(targets, -1), 2), [b, len]);
      outputs.greedy = T.equal(T.argmax(out.logits, -1), targets);
    }
    if (Object.keys(outputs).length === 0) throw new TlabError('forward: the request asks for nothing');
    return outputs;
  }
}

/** [B, T] weights that turn a weighted sum over positions into the pooling `mode` of right-padded rows. */
function poolWeights(mode: Pooling, lengths: readonly number[], len: number): HostTensor {
  const w = new Float32Array(lengths.length * len);
  lengths.forEach((n, r) => {
    if (mode === 'last') w[r * len + n - 1] = 1;
    else if (mode === 'first') w[r * len] = 1;
    else w.fill(1 / n, r * len, r * len + n);
  });
  return { dtype: 'float32', shape: [lengths.length, len], data: w };
}
