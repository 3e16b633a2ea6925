/**
 * NLEEP (Li et al., CVPR 2021; spec §3.2): LEEP with θ replaced by the posteriors of a Gaussian mixture with
 * K = 5·C full-covariance components, fitted on PCA features keeping 80% of the variance.
 */
import type { Matrix } from '../linalg/matrix.ts';
import { pca } from '../linalg/pca.ts';
import { fitGmm } from './gmm.ts';
import { type CommonOptions, prepare } from './input.ts';
import { leepEncoded } from './leep.ts';

export interface NleepOptions extends CommonOptions {
  /** Fraction of variance PCA keeps; null disables PCA. Default 0.8. */
  varianceFraction?: number | null;
  /** Mixture components per class. Default 5. */
  componentRatio?: number;
  seed?: number;
}

export async function nleep(
  features: Matrix,
  labels: ArrayLike<number>,
  options: NleepOptions = {},
): Promise<number> {
  const { labels: enc } = prepare(features, labels, options);
  const frac = options.varianceFraction === undefined ? 0.8 : options.varianceFraction;
  const x = frac === null ? features : (await pca(features, { varianceFraction: frac })).scores;
  const k = Math.min(features.rows, Math.max(1, Math.round((options.componentRatio ?? 5) * enc.numClasses)));
  const gmm = await fitGmm(x, k, { seed: options.seed ?? 0 });
  return await leepEncoded(gmm.responsibilities, enc.y, enc.numClasses);
}
