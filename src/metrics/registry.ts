/**
 * Every estimator under one name and one calling convention, for the CLI and sweeps. Options come from
 * configs (plain JSON values) and are validated per metric.
 */
import type { Matrix } from '../linalg/matrix.ts';
import { TlabError, validChoices } from '../util/errors.ts';
import { gbc } from './gbc.ts';
import { hScore, shrinkageHScore } from './hscore.ts';
import type { InputNames } from './input.ts';
import { knnAccuracy } from './knn-accuracy.ts';
import { argmaxRows, leep, nce } from './leep.ts';
import { logme } from './logme.ts';
import { nleep } from './nleep.ts';
import { parc } from './parc.ts';
import { sfda } from './sfda.ts';
import { transRate } from './transrate.ts';

export interface MetricInput {
  features?: Matrix;
  labels: ArrayLike<number>;
  /** N×Cs source-model probabilities (LEEP, NCE). */
  sourceProbs?: Matrix;
  names?: InputNames;
  numClasses?: number;
}

export type MetricParams = Record<string, string | number | boolean | null>;

export interface MetricSpec {
  description: string;
  needs: 'features' | 'sourceProbs';
  params: readonly string[];
  run(input: MetricInput, params: MetricParams): Promise<number>;
}

function features(input: MetricInput, metric: string): Matrix {
  if (!input.features) throw new TlabError(`${metric}: needs features (--features)`);
  return input.features;
}

function probs(input: MetricInput, metric: string): Matrix {
  if (!input.sourceProbs) throw new TlabError(`${metric}: needs source-model probabilities (--source-probs)`);
  return input.sourceProbs;
}

const num = (p: MetricParams, key: string): number | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number')
    throw new TlabError(`metric option ${key}: expected a number, got ${JSON.stringify(v)}`);
  return v;
};
const numOrNull = (p: MetricParams, key: string): number | null | undefined =>
  p[key] === null ? null : num(p, key);
const bool = (p: MetricParams, key: string): boolean | undefined => {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean')
    throw new TlabError(`metric option ${key}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
};

const common = (input: MetricInput) => ({ names: input.names, numClasses: input.numClasses });

export const METRICS: Record<string, MetricSpec> = {
  logme: {
    description: 'LogME, corrected evidence (spec §2)',
    needs: 'features',
    params: ['thumlCompat', 'variant'],
    run: (i, p) =>
      logme(features(i, 'logme'), i.labels, {
        ...common(i),
        thumlCompat: bool(p, 'thumlCompat'),
        variant: p.variant === 'icml' ? 'icml' : 'fixed-point',
      }),
  },
  leep: {
    description: 'LEEP from source-model probabilities (spec §3.1)',
    needs: 'sourceProbs',
    params: ['logits'],
    run: (i, p) => leep(probs(i, 'leep'), i.labels, { ...common(i), logits: bool(p, 'logits') }),
  },
  nleep: {
    description: 'NLEEP: LEEP on GMM posteriors of PCA features (spec §3.2)',
    needs: 'features',
    params: ['varianceFraction', 'componentRatio', 'seed'],
    run: (i, p) =>
      nleep(features(i, 'nleep'), i.labels, {
        ...common(i),
        varianceFraction: numOrNull(p, 'varianceFraction'),
        componentRatio: num(p, 'componentRatio'),
        seed: num(p, 'seed'),
      }),
  },
  nce: {
    description: 'NCE from argmax source predictions (spec §4)',
    needs: 'sourceProbs',
    params: [],
    run: async (i) => nce(argmaxRows(probs(i, 'nce')), i.labels, common(i)),
  },
  hscore: {
    description: 'H-score (spec §5.1)',
    needs: 'features',
    params: ['rcond'],
    run: (i, p) => hScore(features(i, 'hscore'), i.labels, { ...common(i), rcond: num(p, 'rcond') }),
  },
  'shrinkage-hscore': {
    description: 'Ledoit-Wolf shrinkage H-score (spec §5.2)',
    needs: 'features',
    params: ['rcond'],
    run: (i, p) =>
      shrinkageHScore(features(i, 'shrinkage-hscore'), i.labels, { ...common(i), rcond: num(p, 'rcond') }),
  },
  gbc: {
    description: 'Gaussian Bhattacharyya coefficient (spec §6)',
    needs: 'features',
    params: ['gaussian', 'pcaDims', 'varianceFloor', 'textbookSpherical'],
    run: (i, p) =>
      gbc(features(i, 'gbc'), i.labels, {
        ...common(i),
        gaussian: p.gaussian === 'diagonal' ? 'diagonal' : 'spherical',
        pcaDims: numOrNull(p, 'pcaDims'),
        varianceFloor: num(p, 'varianceFloor'),
        textbookSpherical: bool(p, 'textbookSpherical'),
      }),
  },
  knn: {
    description: 'leave-one-out k-NN accuracy (spec §7)',
    needs: 'features',
    params: ['k'],
    run: (i, p) => knnAccuracy(features(i, 'knn'), i.labels, { ...common(i), k: num(p, 'k') }),
  },
  parc: {
    description: 'PARC (spec §8)',
    needs: 'features',
    params: ['pcaDims', 'standardize'],
    run: (i, p) =>
      parc(features(i, 'parc'), i.labels, {
        ...common(i),
        pcaDims: numOrNull(p, 'pcaDims'),
        standardize: bool(p, 'standardize'),
      }),
  },
  transrate: {
    description: 'TransRate (spec §9)',
    needs: 'features',
    params: ['eps'],
    run: (i, p) => transRate(features(i, 'transrate'), i.labels, { ...common(i), eps: num(p, 'eps') }),
  },
  sfda: {
    description: 'SFDA (spec §10.1)',
    needs: 'features',
    params: [],
    run: (i) => sfda(features(i, 'sfda'), i.labels, common(i)),
  },
};

export function metricSpec(name: string): MetricSpec {
  const spec = METRICS[name];
  if (!spec)
    throw new TlabError(`unknown metric '${name}'`, `valid metrics: ${validChoices(Object.keys(METRICS))}`);
  return spec;
}

/** Runs a metric by name after checking its option names. */
export async function scoreMetric(
  name: string,
  input: MetricInput,
  params: MetricParams = {},
): Promise<number> {
  const spec = metricSpec(name);
  for (const key of Object.keys(params))
    if (!spec.params.includes(key))
      throw new TlabError(
        `metric ${name}: unknown option '${key}'`,
        spec.params.length ? `valid options: ${spec.params.join(', ')}` : 'it takes no options',
      );
  return spec.run(input, params);
}
