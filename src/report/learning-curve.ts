/**
 * The learning curve of one training run from its metrics.jsonl records: training and evaluation loss against
 * the step, and beside it (when the run evaluated) the evaluation metrics, so a falling loss can be read next
 * to whether accuracy actually rose.
 */
import type { TopLevelSpec } from 'vega-lite';
import { type LineSeries, linePlotSpec } from './plot.ts';

/** Evaluation metrics drawn in the second panel, in this order, where the eval records have them. */
export const EVAL_METRICS = ['accuracy', 'exact_match', 'f1', 'macro_f1'] as const;

/** A metrics.jsonl line as read back (non-finite numbers were written as strings). */
export interface CurveRecord {
  step: number;
  split: string;
  [field: string]: unknown;
}

function points(records: readonly CurveRecord[], split: string, field: string) {
  return records
    .filter((r) => r.split === split && typeof r[field] === 'number' && Number.isFinite(r[field]))
    .map((r) => ({ x: r.step, y: r[field] as number }));
}

const named = (name: string, pts: LineSeries['points']): LineSeries[] =>
  pts.length ? [{ name, points: pts }] : [];

/** A line plot as a panel of a concatenation: no schema or background of its own. */
function panel(spec: TopLevelSpec): Record<string, unknown> {
  const { $schema: _s, background: _b, ...rest } = spec as unknown as Record<string, unknown>;
  return rest;
}

/** The spec, or null when no training loss was logged. */
export function learningCurveSpec(records: readonly CurveRecord[], title: string): TopLevelSpec | null {
  const train = points(records, 'train', 'loss');
  if (train.length === 0) return null;
  // steps are read as a count: linear even where they span decades
  const step = { title: 'step', scale: 'linear' as const };
  const lossSeries = [...named('train', train), ...named('eval', points(records, 'eval', 'loss'))];
  const metrics = EVAL_METRICS.flatMap((m) => named(m, points(records, 'eval', m)));
  if (metrics.length === 0)
    return linePlotSpec({
      title: `${title}: learning curve`,
      x: step,
      y: { title: 'loss' },
      series: lossSeries,
    });
  const size = { width: 360, height: 260 };
  const loss = linePlotSpec({ title: 'loss', x: step, y: { title: 'loss' }, series: lossSeries, ...size });
  const evals = linePlotSpec({
    title: 'evaluation',
    x: step,
    y: { title: metrics.length === 1 ? metrics[0].name : 'eval metric' },
    series: metrics,
    ...size,
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${title}: learning curve`,
    background: 'white',
    hconcat: [panel(loss), panel(evals)],
    // each panel has its own series, so its own colours and legend
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
}
