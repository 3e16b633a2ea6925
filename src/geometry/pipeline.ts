/**
 * The per-layer analysis of the representation-landscape study (Doimo et al., NeurIPS 2024), in its order:
 * remove exact duplicates (labels follow) → kNN table → GRIDE at doubling scales → ID at n1 = 16 → kNN log-density
 * with k = 16 → ADP with Z = 1.6 → ARI/AMI of the clusters against each label set → halo pass (core fraction) →
 * label overlap (class_fraction 0.3, class-weighted). TwoNN is reported beside GRIDE.
 */
import type { Matrix } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';
import { adpClustering } from './adp.ts';
import { knnDensity } from './density.ts';
import { type GrideScale, grideMultiscale } from './gride.ts';
import { type NeighbourTable, neighbourTable, truncateTable } from './neighbours.ts';
import { labelOverlap } from './overlap.ts';
import { adjustedMutualInformation, adjustedRandIndex } from './partitions.ts';
import { pick, removeDuplicates } from './points.ts';
import { twoNN } from './twonn.ts';

export interface AnalysisOptions {
  /** Neighbours stored per point (capped at N − 1; raised when label overlap needs more). Default 100. */
  maxk?: number;
  /** GRIDE's largest rank. Default 64. */
  rangeMax?: number;
  /** GRIDE scale n1 whose ID feeds the density. Default 16. */
  idScale?: number;
  /** k of the kNN density. Default 16. */
  densityK?: number;
  /** ADP merging threshold. Default 1.6. */
  z?: number;
  /** Label overlap's class fraction. Default 0.3. */
  classFraction?: number;
  /** TwoNN's kept fraction. Default 0.9. */
  twonnFraction?: number;
  /** Skip clustering (ID only). */
  idOnly?: boolean;
  /** Name in errors. */
  name?: string;
}

export interface LabelScores {
  ari: number;
  ami: number;
  labelOverlap: number;
}

export interface PointAnalysis {
  /** Points analysed (after removing duplicates). */
  n: number;
  duplicates: number;
  dims: number;
  twonn: { fit: number; ml: number };
  gride: GrideScale[];
  /** The ID the density uses (GRIDE at idScale, or its largest available scale). */
  id: number;
  idScale: number;
  clusters?: number;
  coreFraction?: number;
  /** Per label set. */
  labels?: Record<string, LabelScores>;
  /** Cluster of each kept point. */
  assignment?: Int32Array;
  /** Input rows that were kept (first occurrences), ascending. */
  kept: Int32Array;
}

/** What a table for this analysis must hold. */
function neededNeighbours(n: number, labels: Record<string, Int32Array>, options: AnalysisOptions): number {
  let need = Math.max(options.maxk ?? 100, options.rangeMax ?? 64, options.densityK ?? 16);
  const f = options.classFraction ?? 0.3;
  for (const y of Object.values(labels)) {
    const counts = new Map<number, number>();
    for (const v of y) counts.set(v, (counts.get(v) ?? 0) + 1);
    for (const c of counts.values()) need = Math.max(need, Math.floor(c * f));
  }
  return Math.min(need, n - 1);
}

/** Runs the pipeline on one representation (rows = samples) with any number of label sets. */
export async function analysePoints(
  x: Matrix,
  labels: Record<string, Int32Array> = {},
  options: AnalysisOptions = {},
  table?: NeighbourTable,
): Promise<PointAnalysis> {
  const name = options.name ?? 'features';
  for (const [k, y] of Object.entries(labels))
    if (y.length !== x.rows)
      throw new TlabError(`labels '${k}' has ${y.length} rows but ${name} has ${x.rows}; they must match`);
  const { points, kept, duplicates } = removeDuplicates(x);
  const kLabels = Object.fromEntries(Object.entries(labels).map(([k, y]) => [k, pick(y, kept)]));
  const n = points.rows;
  const densityK = options.densityK ?? 16;
  const need = neededNeighbours(n, kLabels, options);
  if (n < Math.max(3, densityK + 1))
    throw new TlabError(
      `${name}: ${n} distinct samples${duplicates ? ` (${duplicates} duplicates removed)` : ''}, but the analysis needs more than k=${densityK} neighbours per point`,
      'use more samples, or a smaller densityK',
    );
  const t =
    table && duplicates === 0 && table.maxk >= need
      ? truncateTable(table, need)
      : await neighbourTable(points, need, { name });
  const two = twoNN(t, { fraction: options.twonnFraction ?? 0.9 }, name);
  const gride = grideMultiscale(t, { rangeMax: Math.min(options.rangeMax ?? 64, t.maxk) }, name);
  const wanted = options.idScale ?? 16;
  const at = gride.find((s) => s.n1 === wanted) ?? gride[gride.length - 1];
  const result: PointAnalysis = {
    n,
    duplicates,
    dims: x.cols,
    twonn: { fit: two.fit, ml: two.ml },
    gride,
    id: at.id,
    idScale: at.n1,
    kept,
  };
  if (options.idOnly) return result;
  const density = knnDensity(t, at.id, Math.min(densityK, t.maxk), name);
  const z = options.z ?? 1.6;
  const adp = adpClustering(t, density, { z });
  const halo = adpClustering(t, density, { z, halo: true });
  result.clusters = adp.clusters;
  result.coreFraction = halo.coreFraction;
  result.assignment = adp.assignment;
  result.labels = {};
  for (const [k, y] of Object.entries(kLabels)) {
    result.labels[k] = {
      ari: adjustedRandIndex(y, adp.assignment),
      ami: adjustedMutualInformation(y, adp.assignment),
      labelOverlap: labelOverlap(t, y, { classFraction: options.classFraction ?? 0.3 }, `labels '${k}'`)
        .value,
    };
  }
  return result;
}
