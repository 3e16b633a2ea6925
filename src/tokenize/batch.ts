import { TlabError } from '../util/errors.ts';
import type { BatchEncoding, Side } from './types.ts';

export interface PadOptions {
  /** Pad every row to this length (rows must not be longer); default: the longest row. */
  length?: number;
  side?: Side;
  padId: number | undefined;
}

/** Lays token rows out as one row-major [batch, length] array with an attention mask. */
export function padRows(rows: readonly (readonly number[])[], options: PadOptions): BatchEncoding {
  const longest = rows.reduce((max, row) => Math.max(max, row.length), 0);
  const length = options.length ?? longest;
  if (longest > length) {
    throw new TlabError(
      `a row has ${longest} tokens, more than the padded length ${length}; enable truncation`,
    );
  }
  const needsPadding = rows.some((row) => row.length < length);
  if (needsPadding && options.padId === undefined) {
    throw new TlabError(
      'cannot pad the batch: the tokenizer has neither a pad token nor an EOS token',
      'pass padId, or add pad_token to tokenizer_config.json',
    );
  }
  const ids = new Int32Array(rows.length * length).fill(options.padId ?? 0);
  const attentionMask = new Int32Array(rows.length * length);
  rows.forEach((row, r) => {
    const start = r * length + (options.side === 'left' ? length - row.length : 0);
    ids.set(row, start);
    attentionMask.fill(1, start, start + row.length);
  });
  return { ids, attentionMask, batchSize: rows.length, length, lengths: rows.map((row) => row.length) };
}

/**
 * Cuts `content` so that prefix + content + suffix fits in `maxLength`: the special tokens a post-processor
 * added (BOS, [CLS] ... [SEP]) survive truncation, as in Hugging Face tokenizers.
 */
export function truncateKeepingSpecials(
  prefix: readonly number[],
  content: readonly number[],
  suffix: readonly number[],
  maxLength: number,
  side: Side,
): number[] {
  const room = maxLength - prefix.length - suffix.length;
  if (room < 0) {
    throw new TlabError(
      `maxLength ${maxLength} leaves no room for text after ${prefix.length + suffix.length} special tokens`,
    );
  }
  const kept =
    content.length <= room
      ? content
      : side === 'left'
        ? content.slice(content.length - room)
        : content.slice(0, room);
  return [...prefix, ...kept, ...suffix];
}

/**
 * Splits an encoding with special tokens into (prefix, content, suffix), given the same text encoded without
 * them. Post-processors for one sequence only wrap the content, so the content is a contiguous run.
 */
export function splitSpecials(
  withSpecials: readonly number[],
  content: readonly number[],
): { prefix: number[]; suffix: number[] } | undefined {
  const extra = withSpecials.length - content.length;
  for (let start = 0; start <= extra; start++) {
    let same = true;
    for (let k = 0; k < content.length && same; k++) same = withSpecials[start + k] === content[k];
    if (same) {
      return {
        prefix: withSpecials.slice(0, start),
        suffix: withSpecials.slice(start + content.length),
      };
    }
  }
  // The post-processor changed the content itself (not seen in practice): the caller cuts the whole row.
  return undefined;
}
