/**
 * One geometry measure on features computed anywhere (what `tlab geometry score` runs): the metric names, their
 * options (snake_case, as on the command line) and the JSON record each returns, {metric, value, n, d, ...}.
 */
import type { Matrix } from '../linalg/matrix.ts';
import { selectRows } from '../linalg/matrix.ts';
import { TlabError, validChoices } from '../util/errors.ts';
import { cka } from './cka.ts';
import { grideAt, grideMultiscale } from './gride.ts';
import { neighbourTable } from './neighbours.ts';
import { labelOverlap, neighbourhoodOverlap } from './overlap.ts';
import { analysePoints } from './pipeline.ts';
import {
  checkPoints,
  checkSameRows,
  findDuplicates,
  intersectSorted,
  pick,
  removeDuplicates,
} from './points.ts';
import { linearProbe } from './probes.ts';
import { twoNN } from './twonn.ts';

export type OptionValue = string | number | boolean | null;
export type ScoreOptions = Record<string, OptionValue>;

export interface ScoreInput {
  features: Matrix;
  featuresB?: Matrix;
  labels?: ArrayLike<number>;
  names?: { features?: string; featuresB?: string; labels?: string };
}

export interface ScoreRecord {
  metric: string;
  value: number;
  n: number;
  d: number;
  [field: string]: unknown;
}

interface MetricSpec {
  description: string;
  needs: ('labels' | 'featuresB')[];
  options: Record<string, string>;
  run(input: Required<Pick<ScoreInput, 'features'>> & ScoreInput, o: OptionReader): Promise<ScoreRecord>;
}

class OptionReader {
  constructor(
    private readonly metric: string,
    private readonly values_: ScoreOptions,
  ) {}
  num(key: string, fallback: number, check: (v: number) => boolean = () => true, valid = 'a number'): number {
    const v = this.values_[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !check(v))
      throw new TlabError(`--option ${key}=${v}: ${this.metric} takes ${valid} for ${key}`);
    return v;
  }
  int(key: string, fallback: number, min = 1): number {
    return this.num(key, fallback, (v) => Number.isInteger(v) && v >= min, `an integer >= ${min}`);
  }
  /** The raw value (undefined when not given). */
  values(key: string): OptionValue | undefined {
    return this.values_[key] ?? undefined;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.values_[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean')
      throw new TlabError(`--option ${key}=${v}: ${this.metric} takes true or false`);
    return v;
  }
  choice<T extends string>(key: string, fallback: T, choices: readonly T[]): T {
    const v = this.values_[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || !choices.includes(v as T))
      throw new TlabError(`--option ${key}=${v}: valid values are ${choices.join(', ')}`);
    return v as T;
  }
}

function intLabels(labels: ArrayLike<number>, name: string): Int32Array {
  return Int32Array.from(labels, (v, i) => {
    if (!Number.isInteger(v)) throw new TlabError(`${name}: row ${i} is ${v}; labels must be integers`);
    return v;
  });
}

/** Rows that are not exact duplicates in either representation (overlap and CKA compare the same samples). */
function sharedDistinct(a: Matrix, b: Matrix): { a: Matrix; b: Matrix; dropped: number } {
  const keep = intersectSorted(findDuplicates(a).kept, findDuplicates(b).kept);
  if (keep.length === a.rows) return { a, b, dropped: 0 };
  return { a: selectRows(a, keep), b: selectRows(b, keep), dropped: a.rows - keep.length };
}

export const GEOMETRY_METRICS: Record<string, MetricSpec> = {
  twonn: {
    description: 'TwoNN intrinsic dimension (fit through the origin without the top 10% of ratios, or ML)',
    needs: [],
    options: { fraction: 'kept fraction of ratios (0.9)', algorithm: 'fit | ml' },
    async run(input, o) {
      const { points, duplicates } = removeDuplicates(input.features);
      const t = twoNN(
        await neighbourTable(points, 2, { name: input.names?.features }),
        {
          fraction: o.num('fraction', 0.9, (v) => v > 0 && v <= 1, 'a fraction in (0, 1]'),
          algorithm: o.choice<'fit' | 'ml'>('algorithm', 'fit', ['fit', 'ml']),
        },
        input.names?.features,
      );
      return {
        metric: 'twonn',
        value: t.id,
        n: points.rows,
        d: points.cols,
        fit: t.fit,
        ml: t.ml,
        scale: t.scale,
        duplicates,
      };
    },
  },
  gride: {
    description: 'GRIDE intrinsic dimension at doubling scales; value at n1 (16)',
    needs: [],
    options: { range_max: 'largest neighbour rank (64)', n1: 'reported scale (16)' },
    async run(input, o) {
      const { points, duplicates } = removeDuplicates(input.features);
      const rangeMax = Math.min(o.int('range_max', 64, 2), points.rows - 1);
      const t = await neighbourTable(points, rangeMax, { name: input.names?.features });
      const profile = grideMultiscale(t, { rangeMax }, input.names?.features);
      const n1 = o.int('n1', 16);
      const at = profile.find((s) => s.n1 === n1) ?? grideAt(profile, n1);
      return {
        metric: 'gride',
        value: at.id,
        n: points.rows,
        d: points.cols,
        n1,
        error: at.error,
        profile,
        duplicates,
      };
    },
  },
  'adp-ari': {
    description: 'ARI of Advanced Density Peaks clusters (GRIDE ID, kNN density, Z) against the labels',
    needs: ['labels'],
    options: {
      z: 'merging threshold (1.6)',
      k: 'density neighbours (16)',
      id_scale: 'GRIDE n1 for the ID (16)',
      class_fraction: 'label-overlap fraction (0.3)',
    },
    async run(input, o) {
      const y = intLabels(input.labels as ArrayLike<number>, input.names?.labels ?? 'labels');
      const r = await analysePoints(
        input.features,
        { labels: y },
        {
          z: o.num('z', 1.6, (v) => v > 0, 'a positive number'),
          densityK: o.int('k', 16),
          idScale: o.int('id_scale', 16),
          classFraction: o.num('class_fraction', 0.3, (v) => v > 0 && v <= 1, 'a fraction in (0, 1]'),
          name: input.names?.features,
        },
      );
      const s = r.labels!.labels;
      return {
        metric: 'adp-ari',
        value: s.ari,
        n: r.n,
        d: r.dims,
        clusters: r.clusters,
        ami: s.ami,
        core_fraction: r.coreFraction,
        label_overlap: s.labelOverlap,
        id: r.id,
        duplicates: r.duplicates,
      };
    },
  },
  overlap: {
    description: 'neighbourhood overlap χ_k between two representations of the same samples',
    needs: ['featuresB'],
    options: { k: 'neighbours (30)' },
    async run(input, o) {
      const { a, b, dropped } = sharedDistinct(input.features, input.featuresB as Matrix);
      const k = o.int('k', 30);
      const ta = await neighbourTable(a, k, { name: input.names?.features });
      const tb = await neighbourTable(b, k, { name: input.names?.featuresB });
      return {
        metric: 'overlap',
        value: neighbourhoodOverlap(ta, tb, k),
        n: a.rows,
        d: a.cols,
        d_b: b.cols,
        k,
        duplicates: dropped,
      };
    },
  },
  'label-overlap': {
    description: 'fraction of nearest neighbours sharing the label (class_fraction 0.3, class-weighted)',
    needs: ['labels'],
    options: {
      k: 'fixed neighbours (instead of class_fraction)',
      class_fraction: 'neighbours as a fraction of the class (0.3)',
      weighted: 'weight by 1/class size (true)',
    },
    async run(input, o) {
      const { points, kept, duplicates } = removeDuplicates(input.features);
      const y = pick(intLabels(input.labels as ArrayLike<number>, input.names?.labels ?? 'labels'), kept);
      const fixed = o.values('k');
      const f =
        fixed === undefined
          ? o.num('class_fraction', 0.3, (v) => v > 0 && v <= 1, 'a fraction in (0, 1]')
          : undefined;
      const k = fixed === undefined ? undefined : o.int('k', 30);
      const counts = new Map<number, number>();
      for (const v of y) counts.set(v, (counts.get(v) ?? 0) + 1);
      const need = k ?? Math.max(1, ...[...counts.values()].map((c) => Math.floor(c * (f as number))));
      const t = await neighbourTable(points, Math.min(need, points.rows - 1), {
        name: input.names?.features,
      });
      const r = labelOverlap(
        t,
        y,
        { k, classFraction: f, weighted: o.bool('weighted', true) },
        input.names?.labels,
      );
      return {
        metric: 'label-overlap',
        value: r.value,
        n: points.rows,
        d: points.cols,
        max_k: r.maxK,
        classes: counts.size,
        duplicates,
      };
    },
  },
  'cka-linear': {
    description: 'linear CKA between two representations of the same samples',
    needs: ['featuresB'],
    options: {},
    async run(input) {
      return ckaRecord('cka-linear', input, { kernel: 'linear' });
    },
  },
  'cka-rbf': {
    description: 'RBF CKA, bandwidth threshold × median distance (1.0)',
    needs: ['featuresB'],
    options: { threshold: 'bandwidth as a fraction of the median distance (1.0)' },
    async run(input, o) {
      return ckaRecord('cka-rbf', input, {
        kernel: 'rbf',
        threshold: o.num('threshold', 1, (v) => v > 0, 'a positive number'),
      });
    },
  },
  'cka-debiased': {
    description: 'debiased CKA (U-centred Grams), linear or RBF kernel',
    needs: ['featuresB'],
    options: { kernel: 'linear | rbf (linear)', threshold: 'RBF bandwidth fraction (1.0)' },
    async run(input, o) {
      return ckaRecord('cka-debiased', input, {
        kernel: o.choice<'linear' | 'rbf'>('kernel', 'linear', ['linear', 'rbf']),
        threshold: o.num('threshold', 1, (v) => v > 0, 'a positive number'),
        debiased: true,
      });
    },
  },
  probe: {
    description: 'held-out accuracy of an L2 logistic-regression probe (C by inner cross-validation)',
    needs: ['labels'],
    options: {
      test_fraction: 'held-out share (0.2)',
      folds: 'inner CV folds (3)',
      c: 'fixed C (skips the CV)',
      seed: 'split seed (0)',
      max_iter: 'L-BFGS iterations (200)',
    },
    async run(input, o) {
      const c = o.values('c');
      const r = linearProbe(input.features, input.labels as ArrayLike<number>, {
        testFraction: o.num('test_fraction', 0.2, (v) => v > 0 && v < 1, 'a fraction in (0, 1)'),
        folds: o.int('folds', 3),
        c: c === undefined ? undefined : o.num('c', 1, (v) => v > 0, 'a positive number'),
        seed: o.int('seed', 0, 0),
        maxIter: o.int('max_iter', 200),
        name: input.names?.features,
      });
      return {
        metric: 'probe',
        value: r.accuracy,
        n: input.features.rows,
        d: input.features.cols,
        macro_accuracy: r.macroAccuracy,
        train_accuracy: r.trainAccuracy,
        majority: r.majority,
        control: r.control,
        c: r.c,
        train: r.train,
        test: r.test,
        classes: r.classes,
      };
    },
  },
};

async function ckaRecord(
  metric: string,
  input: ScoreInput,
  options: Parameters<typeof cka>[2],
): Promise<ScoreRecord> {
  const { a, b, dropped } = sharedDistinct(input.features, input.featuresB as Matrix);
  const names: [string, string] = [
    input.names?.features ?? 'features',
    input.names?.featuresB ?? 'features-b',
  ];
  const value = await cka(a, b, { ...options, names });
  return { metric, value, n: a.rows, d: a.cols, d_b: b.cols, duplicates: dropped };
}

/** Scores one metric; checks the inputs it needs and the option names. */
export async function scoreGeometry(
  metric: string,
  input: ScoreInput,
  options: ScoreOptions = {},
): Promise<ScoreRecord> {
  const spec = GEOMETRY_METRICS[metric];
  if (!spec)
    throw new TlabError(
      `--metric ${metric}: unknown geometry metric`,
      `valid: ${validChoices(Object.keys(GEOMETRY_METRICS))}`,
    );
  for (const key of Object.keys(options))
    if (!(key in spec.options))
      throw new TlabError(
        `--option ${key}: ${metric} has no option '${key}'`,
        Object.keys(spec.options).length
          ? `valid: ${Object.keys(spec.options).join(', ')}`
          : `${metric} takes no options`,
      );
  const names = input.names ?? {};
  checkPoints(input.features, { name: names.features });
  if (spec.needs.includes('labels')) {
    if (!input.labels) throw new TlabError(`--metric ${metric} needs --labels`);
    if (input.labels.length !== input.features.rows)
      throw new TlabError(
        `${names.labels ?? 'labels'} has ${input.labels.length} rows but ${names.features ?? 'features'} has ${input.features.rows}`,
      );
  }
  if (spec.needs.includes('featuresB')) {
    if (!input.featuresB)
      throw new TlabError(
        `--metric ${metric} needs --features-b (a second representation of the same samples)`,
      );
    checkPoints(input.featuresB, { name: names.featuresB ?? 'features-b' });
    checkSameRows(
      input.features,
      input.featuresB,
      names.features ?? 'features',
      names.featuresB ?? 'features-b',
    );
  }
  return spec.run(input as ScoreInput & { features: Matrix }, new OptionReader(metric, options));
}
