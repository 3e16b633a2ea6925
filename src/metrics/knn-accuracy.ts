/**
 * kNN proxy (spec §7, clean version): leave-one-out k-nearest-neighbour accuracy with Euclidean distance,
 * neighbours ordered by (distance, index), majority vote with ties going to the smallest label. In [0, 1].
 */
import { knn } from '../linalg/knn.ts';
import type { Matrix } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';
import { type CommonOptions, prepare } from './input.ts';

export interface KnnAccuracyOptions extends CommonOptions {
  /** Neighbours per vote. Default 1. */
  k?: number;
}

export async function knnAccuracy(
  features: Matrix,
  labels: ArrayLike<number>,
  options: KnnAccuracyOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const k = options.k ?? 1;
  if (!Number.isInteger(k) || k < 1 || k >= features.rows)
    throw new TlabError(
      `knn: k=${k} must be an integer in [1, ${features.rows - 1}] (leave-one-out on ${features.rows} rows)`,
    );
  const { indices } = await knn(features, k);
  const votes = new Int32Array(enc.numClasses);
  let correct = 0;
  for (let i = 0; i < features.rows; i++) {
    votes.fill(0);
    for (let c = 0; c < k; c++) votes[enc.y[indices[i * k + c]]]++;
    let best = 0;
    for (let c = 1; c < enc.numClasses; c++) if (votes[c] > votes[best]) best = c;
    if (best === enc.y[i]) correct++;
  }
  return correct / features.rows;
}
