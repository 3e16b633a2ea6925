/**
 * Source-model probabilities for LEEP and NCE (θ, N × Cs, rows summing to 1) and the label space they range over.
 * A classifier's are its head's softmax over its own labels (id2label). A decoder's are the next-token
 * distribution after the prompt (at its last token: the distribution of the answer's first token), over the whole
 * vocabulary, or over the k tokens with the highest mean probability across the examples with every row
 * renormalised over them (top-k: one label space shared by all rows, as LEEP needs). A vision encoder has no head,
 * so none.
 */
import type { ModelKind } from '../models/types.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { TlabError } from '../util/errors.ts';
import { softmaxRows } from './classifier-forward.ts';

export const SOURCE_PROBS_MODES = ['auto', 'none', 'head', 'vocab', 'top-k'] as const;
export type SourceProbsMode = (typeof SOURCE_PROBS_MODES)[number];

/** auto: a classifier's head; a decoder's vocabulary up to this size, top-k above it. */
export const AUTO_VOCAB_LIMIT = 4096;
export const DEFAULT_TOP_K = 256;

export interface SourceProbsRequest {
  mode: SourceProbsMode;
  /** k of the top-k label space (default 256). */
  topK?: number;
}

export interface LabelSpace {
  kind: 'classifier-head' | 'vocabulary' | 'top-k';
  /** Cs, the number of columns. */
  size: number;
  /** Column names: the head's class names, or the top-k tokens (the vocabulary's are left out: its size says it). */
  labels?: string[];
  /** Top-k: the token id of each column. */
  token_ids?: number[];
  /** In words, for features.json. */
  description: string;
}

export interface SourceProbs {
  /** [rows, cols] row-major, float64, every row sums to 1. */
  probs: Float64Array;
  rows: number;
  cols: number;
  labelSpace: LabelSpace;
}

/** The mode a request comes to for a model ('none' with the reason when it has no source probabilities). */
export function resolveSourceProbsMode(
  request: SourceProbsRequest,
  kind: ModelKind,
  readsVision: boolean,
  vocabSize: number | null,
  where: string,
): { mode: 'none' | 'head' | 'vocab' | 'top-k'; reason: string | null } {
  const classifier = kind === 'image-classifier' || kind === 'sequence-classifier';
  const decoder = !classifier && !readsVision && vocabSize !== null;
  const { mode } = request;
  if (mode === 'none') return { mode, reason: 'not asked for' };
  if (mode === 'auto') {
    if (classifier) return { mode: 'head', reason: null };
    if (decoder) return { mode: vocabSize! <= AUTO_VOCAB_LIMIT ? 'vocab' : 'top-k', reason: null };
    return {
      mode: 'none',
      reason: `${kind === 'vlm' ? "a VLM's vision tower" : `a ${kind}`} has no head to give them`,
    };
  }
  if (mode === 'head' && !classifier)
    throw new TlabError(
      `${where}: source probabilities 'head' need a classifier; this is a ${kind}${decoder ? " (use 'vocab' or 'top-k': its next-token distribution)" : ''}`,
    );
  if ((mode === 'vocab' || mode === 'top-k') && !decoder)
    throw new TlabError(
      `${where}: source probabilities '${mode}' are a decoder's next-token distribution; this is a ${kind}${classifier ? " (use 'head')" : ''}${readsVision && !classifier ? ' read through its vision tower' : ''}`,
    );
  return { mode, reason: null };
}

/** A classifier head's softmax over its labels. */
export function headProbs(logits: Float32Array, labels: readonly string[]): SourceProbs {
  const cols = labels.length;
  return {
    probs: softmaxRows(logits, cols),
    rows: logits.length / cols,
    cols,
    labelSpace: {
      kind: 'classifier-head',
      size: cols,
      labels: [...labels],
      description: `softmax of the classifier head over its own ${cols} labels (config.json id2label)`,
    },
  };
}

const POSITION = "the next-token distribution at each prompt's last token (the first answer token)";

/** A decoder's next-token distribution over the whole vocabulary. */
export function vocabularyProbs(logits: Float32Array, vocabSize: number): SourceProbs {
  return {
    probs: softmaxRows(logits, vocabSize),
    rows: logits.length / vocabSize,
    cols: vocabSize,
    labelSpace: {
      kind: 'vocabulary',
      size: vocabSize,
      description: `${POSITION}, over the whole vocabulary of ${vocabSize} tokens`,
    },
  };
}

/**
 * The next-token distribution over the k tokens of highest mean probability across the rows (ties: the lower id),
 * each row renormalised over them.
 */
export function topKProbs(
  logits: Float32Array,
  vocabSize: number,
  k: number,
  tokenizer: TextTokenizer | null,
): SourceProbs {
  if (!Number.isInteger(k) || k < 2)
    throw new TlabError(`top-k: k must be an integer of at least 2, got ${k}`);
  const full = softmaxRows(logits, vocabSize);
  const rows = full.length / vocabSize;
  const mean = new Float64Array(vocabSize);
  for (let i = 0; i < rows; i++) for (let v = 0; v < vocabSize; v++) mean[v] += full[i * vocabSize + v];
  const kk = Math.min(k, vocabSize);
  const ids = Array.from({ length: vocabSize }, (_, v) => v)
    .sort((a, b) => mean[b] - mean[a] || a - b)
    .slice(0, kk);
  // Renormalised over the k tokens = a softmax of their logits (well defined even where all k are tiny).
  const picked = new Float32Array(rows * kk);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < kk; j++) picked[i * kk + j] = logits[i * vocabSize + ids[j]];
  const probs = softmaxRows(picked, kk);
  return {
    probs,
    rows,
    cols: kk,
    labelSpace: {
      kind: 'top-k',
      size: kk,
      labels: ids.map((id) => tokenizer?.idToToken(id) ?? String(id)),
      token_ids: ids,
      description: `${POSITION}, over the ${kk} tokens of highest mean probability across these examples, each row renormalised over them`,
    },
  };
}
