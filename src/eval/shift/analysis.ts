/**
 * Task-to-task shift from model features (and labels): every measure for every unordered task pair, the pairwise
 * matrices, and — given a transfer analysis — the correlation of each shift quantity with the transfer index
 * across task pairs. The result is shift.json (schema SHIFT_SCHEMA, docs/transfer-and-shift.md).
 */
import type { Matrix } from '../../linalg/matrix.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { hashSeed } from '../../util/random.ts';
import type { TransferResult } from '../transfer.ts';
import { type Correlation, correlate, type TransferPoint, transferPoints } from './correlation.ts';
import { type DomainClassifierResult, domainClassifier } from './domain-classifier.ts';
import { type FrechetResult, frechetDistance } from './frechet.ts';
import { labelDivergence } from './label-divergence.ts';
import { type MmdResult, mmd2Rbf } from './mmd.ts';

export const SHIFT_SCHEMA = 'transferlab-shift/1';

export const SHIFT_MEASURES = ['mmd', 'frechet', 'domain', 'label-js'] as const;
export type ShiftMeasure = (typeof SHIFT_MEASURES)[number];

/** The numbers of a pair that form matrices and are correlated with transfer. */
export const SHIFT_QUANTITIES = {
  mmd2: 'mmd',
  mmd_p_value: 'mmd',
  frechet: 'frechet',
  domain_accuracy: 'domain',
  proxy_a_distance: 'domain',
  label_js: 'label-js',
  label_tv: 'label-js',
} as const satisfies Record<string, ShiftMeasure>;
export type ShiftQuantity = keyof typeof SHIFT_QUANTITIES;
/** Quantities that measure distance (the p-value and raw accuracy are reported, not correlated). */
const CORRELATED: ShiftQuantity[] = ['mmd2', 'frechet', 'proxy_a_distance', 'label_js', 'label_tv'];

export interface ShiftTask {
  name: string;
  features?: Matrix;
  /** Where the features came from (file#tensor), for messages and the result. */
  featuresSource?: string;
  /** Class name of each row. */
  labels?: string[];
  labelsSource?: string;
}

export interface ShiftSettings {
  measures: ShiftMeasure[];
  seed: number;
  mmd: { permutations: number; maxSamples: number; bandwidth: number | null };
  frechet: { pcaDims: number | null };
  domain: { folds: number; C: number; maxSamples: number };
  labels: { smoothing: number };
  correlation: { resamples: number; level: number };
}

export const DEFAULT_SHIFT_SETTINGS: ShiftSettings = {
  measures: ['mmd', 'frechet', 'domain', 'label-js'],
  seed: 0,
  mmd: { permutations: 500, maxSamples: 1000, bandwidth: null },
  frechet: { pcaDims: null },
  domain: { folds: 5, C: 1, maxSamples: 5000 },
  labels: { smoothing: 1 },
  correlation: { resamples: 1000, level: 0.95 },
};

export interface ShiftPair {
  a: string;
  b: string;
  mmd?: MmdResult;
  frechet?: FrechetResult;
  domain?: DomainClassifierResult;
  label?: { js: number; tv: number; classes: string[]; p: number[]; q: number[] };
}

export interface ShiftCorrelation {
  /** transfer.json the transfer values came from. */
  transfer: string;
  points: (TransferPoint & Partial<Record<ShiftQuantity, number | null>>)[];
  /** By quantity: all models, then per strategy. */
  measures: Partial<Record<ShiftQuantity, Correlation & { per_strategy: Record<string, Correlation> }>>;
  /** Transfer pairs whose tasks the shift analysis does not have. */
  unmatched: string[];
}

export interface ShiftResult {
  schema: typeof SHIFT_SCHEMA;
  created_at: string;
  settings: ShiftSettings;
  tasks: {
    name: string;
    features: string | null;
    n: number | null;
    d: number | null;
    labels: string | null;
  }[];
  pairs: ShiftPair[];
  /** Symmetric task × task matrices (null on the diagonal and where not measured). */
  matrices: Partial<Record<ShiftQuantity, { tasks: string[]; values: (number | null)[][] }>>;
  correlation: ShiftCorrelation | null;
  warnings: string[];
}

export function pairValue(p: ShiftPair, q: ShiftQuantity): number | null {
  switch (q) {
    case 'mmd2':
      return p.mmd?.mmd2 ?? null;
    case 'mmd_p_value':
      return p.mmd?.pValue ?? null;
    case 'frechet':
      return p.frechet?.distance ?? null;
    case 'domain_accuracy':
      return p.domain?.accuracy ?? null;
    case 'proxy_a_distance':
      return p.domain?.proxyADistance ?? null;
    case 'label_js':
      return p.label?.js ?? null;
    case 'label_tv':
      return p.label?.tv ?? null;
  }
}

function checkTasks(tasks: ShiftTask[], measures: ShiftMeasure[]): void {
  if (tasks.length < 2) throw new TlabError(`shift: needs at least 2 tasks, got ${tasks.length}`);
  const seen = new Set<string>();
  for (const t of tasks) {
    if (seen.has(t.name)) throw new TlabError(`shift: task '${t.name}' is given twice`);
    seen.add(t.name);
  }
  for (const m of measures) {
    if (!SHIFT_MEASURES.includes(m))
      throw new TlabError(`shift: measure '${m}' is not one of ${validChoices(SHIFT_MEASURES)}`);
    const need = m === 'label-js' ? 'labels' : 'features';
    const missing = tasks.filter((t) => t[need] === undefined).map((t) => t.name);
    if (missing.length)
      throw new TlabError(
        `shift: measure ${m} needs ${need} for every task; ${missing.join(', ')} ${missing.length > 1 ? 'have' : 'has'} none`,
      );
  }
  const withFeatures = tasks.filter((t) => t.features);
  for (const t of withFeatures)
    if (t.features!.cols !== withFeatures[0].features!.cols)
      throw new TlabError(
        `shift: ${t.featuresSource ?? t.name} has ${t.features!.cols} feature columns but ${withFeatures[0].featuresSource ?? withFeatures[0].name} has ${withFeatures[0].features!.cols}; all features must come from the same model and layer`,
      );
}

/** Every measure for every task pair; `onStep` is called after each (pair, measure) with a label. */
export async function analyzeShift(
  tasks: ShiftTask[],
  settings: ShiftSettings = DEFAULT_SHIFT_SETTINGS,
  options: { transfer?: TransferResult; transferSource?: string; onStep?: (label: string) => void } = {},
): Promise<ShiftResult> {
  const measures = [...new Set(settings.measures)];
  checkTasks(tasks, measures);
  const warnings: string[] = [];
  const pairs: ShiftPair[] = [];
  const seedFor = (measure: string, a: string, b: string) => hashSeed(settings.seed, measure, a, b);
  for (let i = 0; i < tasks.length; i++)
    for (let j = i + 1; j < tasks.length; j++) {
      const a = tasks[i];
      const b = tasks[j];
      const pair: ShiftPair = { a: a.name, b: b.name };
      const where = (what: string, e: unknown) =>
        e instanceof TlabError ? new TlabError(`${what} ${a.name} vs ${b.name}: ${e.message}`, e.details) : e;
      for (const m of measures) {
        try {
          if (m === 'mmd')
            pair.mmd = await mmd2Rbf(a.features!, b.features!, {
              permutations: settings.mmd.permutations,
              maxSamples: settings.mmd.maxSamples,
              bandwidth: settings.mmd.bandwidth ?? undefined,
              seed: seedFor('mmd', a.name, b.name),
            });
          else if (m === 'frechet') {
            pair.frechet = await frechetDistance(a.features!, b.features!, {
              pcaDims: settings.frechet.pcaDims,
            });
            if (pair.frechet.warning)
              warnings.push(`Fréchet ${a.name} vs ${b.name}: ${pair.frechet.warning}`);
          } else if (m === 'domain') {
            pair.domain = domainClassifier(a.features!, b.features!, {
              folds: settings.domain.folds,
              C: settings.domain.C,
              maxSamples: settings.domain.maxSamples,
              seed: seedFor('domain', a.name, b.name),
            });
            if (!pair.domain.converged)
              warnings.push(
                `domain classifier ${a.name} vs ${b.name}: a fold's logistic regression stopped before converging`,
              );
          } else {
            const r = labelDivergence(a.labels!, b.labels!, settings.labels.smoothing);
            pair.label = { js: r.js, tv: r.tv, classes: r.classes, p: r.p, q: r.q };
          }
        } catch (e) {
          throw where(m, e);
        }
        options.onStep?.(`${m} ${a.name}~${b.name}`);
      }
      pairs.push(pair);
    }
  const names = tasks.map((t) => t.name);
  const matrices: ShiftResult['matrices'] = {};
  for (const q of Object.keys(SHIFT_QUANTITIES) as ShiftQuantity[]) {
    if (!measures.includes(SHIFT_QUANTITIES[q])) continue;
    const values = names.map(() => names.map((): number | null => null));
    for (const p of pairs) {
      const i = names.indexOf(p.a);
      const j = names.indexOf(p.b);
      values[i][j] = values[j][i] = pairValue(p, q);
    }
    matrices[q] = { tasks: names, values };
  }
  const correlation = options.transfer
    ? shiftTransferCorrelation(
        pairs,
        measures,
        options.transfer,
        options.transferSource ?? 'transfer.json',
        settings,
      )
    : null;
  if (correlation)
    for (const u of correlation.unmatched) warnings.push(`transfer pair ${u}: a task has no shift input`);
  return {
    schema: SHIFT_SCHEMA,
    created_at: new Date().toISOString(),
    settings: { ...settings, measures },
    tasks: tasks.map((t) => ({
      name: t.name,
      features: t.featuresSource ?? null,
      n: t.features?.rows ?? null,
      d: t.features?.cols ?? null,
      labels: t.labelsSource ?? null,
    })),
    pairs,
    matrices,
    correlation,
    warnings,
  };
}

function shiftTransferCorrelation(
  pairs: ShiftPair[],
  measures: ShiftMeasure[],
  transfer: TransferResult,
  source: string,
  settings: ShiftSettings,
): ShiftCorrelation {
  const byTasks = new Map<string, ShiftPair>();
  for (const p of pairs) {
    byTasks.set(`${p.a}\u0000${p.b}`, p);
    byTasks.set(`${p.b}\u0000${p.a}`, p);
  }
  const quantities = CORRELATED.filter((q) => measures.includes(SHIFT_QUANTITIES[q]));
  const unmatched: string[] = [];
  type Point = ShiftCorrelation['points'][number];
  const pointsOf = (strategy?: string): Point[] =>
    transferPoints(transfer, strategy).flatMap((t): Point[] => {
      const p = byTasks.get(`${t.train_task}\u0000${t.eval_task}`);
      if (!p) {
        if (strategy === undefined) unmatched.push(`${t.train_task}→${t.eval_task}`);
        return [];
      }
      return [{ ...t, ...Object.fromEntries(quantities.map((q) => [q, pairValue(p, q)])) }];
    });
  const points = pointsOf();
  const strategies = [
    ...new Set(
      transfer.models.filter((m) => m.role === 'finetuned' && m.strategy !== null).map((m) => m.strategy!),
    ),
  ];
  const cs = { ...settings.correlation, seed: settings.seed };
  const corr = (pts: Point[], q: ShiftQuantity) => {
    const usable = pts.filter((p) => typeof p[q] === 'number');
    return correlate(
      usable.map((p) => p[q] as number),
      usable.map((p) => p.index),
      cs,
    );
  };
  const out: ShiftCorrelation['measures'] = {};
  for (const q of quantities) {
    const perStrategy: Record<string, Correlation> = {};
    if (strategies.length > 1) for (const s of strategies) perStrategy[s] = corr(pointsOf(s), q);
    out[q] = { ...corr(points, q), per_strategy: perStrategy };
  }
  return { transfer: source, points, measures: out, unmatched };
}
