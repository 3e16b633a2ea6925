/**
 * The charts of a study as vega-lite specs (built by shared/charts.js, the same builders the dashboard draws
 * with): transfer heatmaps, estimator score vs actual accuracy with Kendall τ, score vs n_samples, learning
 * curves (TensorBoard's default smoothing 0.6 over the raw values) and geometry profiles and CKA matrices.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { TransferCell } from '../eval/transfer.ts';
import { estimatorGroups } from './estimator-points.ts';
import type { ExperimentData } from './experiment.ts';
import type { GeometryAnalysis } from './geometry-results.ts';
import { curvesSpec, estimatorScatterSpec, fmt, heatmapSpec, linesSpec } from './shared/charts.js';
import { debiasedEma } from './shared/smoothing.js';
import { type CurveSeries, readCurves } from './training-curves.ts';

export type ChartSection = 'transfer' | 'estimators' | 'curves' | 'geometry';

export interface ReportChart {
  /** File name stem (charts/<id>.svg|png), unique. */
  id: string;
  section: ChartSection;
  spec: TopLevelSpec;
}

/** The transfer statistics a heatmap can show, with titles and colour scales. */
export const TRANSFER_METRICS = [
  { key: 'score', title: 'score', diverging: false },
  { key: 'delta_vs_base', title: 'delta vs base', diverging: true },
  { key: 'relative_gain', title: 'relative gain', diverging: true },
  { key: 'transfer_index', title: 'transfer index', diverging: true },
] as const;
export type TransferMetricKey = (typeof TRANSFER_METRICS)[number]['key'];

export function transferHeatmap(
  cells: readonly TransferCell[],
  models: string[],
  tasks: string[],
  metric: (typeof TRANSFER_METRICS)[number],
  clickable = false,
): TopLevelSpec {
  return heatmapSpec({
    title: `transfer matrix: ${metric.title}`,
    rows: models,
    cols: tasks,
    rowTitle: 'model',
    colTitle: 'task',
    valueTitle: metric.title,
    diverging: metric.diverging,
    domain: metric.key === 'score' ? [0, 1] : undefined,
    clickable,
    cells: cells.map((c) => {
      const s = c[metric.key];
      return {
        row: c.model,
        col: c.task,
        value: c.status === 'done' ? s.value : null,
        low: s.low,
        high: s.high,
        n: c.n,
        status: c.status === 'done' ? 'undefined' : c.status,
        note: c.status === 'done' ? (s.reason ?? '') : (c.reason ?? ''),
      };
    }),
  });
}

const safeId = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

/** Learning-curve series grouped by tag (train/loss, eval/accuracy, ...), each run smoothed. */
export function curveGroups(exp: ExperimentData, warnings: string[]): Map<string, CurveSeries[]> {
  const byTag = new Map<string, CurveSeries[]>();
  for (const ref of exp.logs) {
    let series: CurveSeries[];
    try {
      series = readCurves(exp.dir, ref);
    } catch (error) {
      warnings.push((error as Error).message);
      continue;
    }
    for (const s of series) byTag.set(s.tag, [...(byTag.get(s.tag) ?? []), s]);
  }
  return byTag;
}

function geometryCharts(a: GeometryAnalysis): ReportChart[] {
  const out: ReportChart[] = [];
  const base = `geometry_${safeId(a.name)}`;
  if (a.profiles.length) {
    out.push({
      id: `${base}_id`,
      section: 'geometry',
      spec: linesSpec({
        title: `intrinsic dimension vs layer (${a.name})`,
        x: { title: 'layer' },
        y: { title: 'ID' },
        series: a.profiles.map((p) => ({
          name: p.condition,
          points: p.layers.flatMap((l) => (l.id === null ? [] : [{ x: l.layer, y: l.id }])),
        })),
      }),
    });
    const labels = [...new Set(a.profiles.flatMap((p) => p.layers.flatMap((l) => Object.keys(l.labels))))];
    for (const label of labels)
      out.push({
        id: `${base}_ari_${safeId(label)}`,
        section: 'geometry',
        spec: linesSpec({
          title: `ARI of density-peak clusters vs '${label}' (${a.name})`,
          x: { title: 'layer' },
          y: { title: 'ARI' },
          series: a.profiles.map((p) => ({
            name: p.condition,
            points: p.layers.flatMap((l) => {
              const v = l.labels[label]?.ari;
              return v === null || v === undefined ? [] : [{ x: l.layer, y: v }];
            }),
          })),
        }),
      });
  }
  if (a.overlap.length)
    out.push({
      id: `${base}_overlap`,
      section: 'geometry',
      spec: linesSpec({
        title: `neighbourhood overlap vs layer (${a.name})`,
        x: { title: 'layer' },
        y: { title: `χ_k (k=${a.overlap[0].k})` },
        series: a.overlap.map((o) => ({
          name: `${o.pair[0]} / ${o.pair[1]}`,
          points: o.layers.map((l) => ({ x: l.layer, y: l.value })),
        })),
      }),
    });
  for (const c of a.cka)
    out.push({
      id: `${base}_cka_${safeId(c.pair[0])}__${safeId(c.pair[1])}`,
      section: 'geometry',
      spec: heatmapSpec({
        title: `CKA between layers (${c.pair[0]} × ${c.pair[1]})`,
        rows: c.layersA,
        cols: c.layersB,
        rowTitle: `${c.pair[0]} layer`,
        colTitle: `${c.pair[1]} layer`,
        valueTitle: 'CKA',
        domain: [0, 1],
        cellWidth: 44,
        cells: c.layersA.flatMap((la, i) =>
          c.layersB.map((lb, j) => ({ row: la, col: lb, value: c.values[i]?.[j] })),
        ),
      }),
    });
  return out;
}

/** The report's default smoothing, TensorBoard's default slider position. */
export const REPORT_SMOOTHING = 0.6;

export function reportCharts(exp: ExperimentData, warnings: string[]): ReportChart[] {
  const charts: ReportChart[] = [];
  const t = exp.transfer;
  if (t)
    for (const m of TRANSFER_METRICS)
      charts.push({
        id: `transfer_${m.key}`,
        section: 'transfer',
        spec: transferHeatmap(t.cells, t.matrix.models, t.matrix.tasks, m),
      });
  const groups = estimatorGroups(exp.estimators, exp.grid, exp.summary);
  const taskMetrics = [...new Set(groups.map((g) => JSON.stringify([g.task, g.metric])))].map(
    (k) => JSON.parse(k) as [string, string],
  );
  for (const [task, metric] of taskMetrics) {
    const gs = groups.filter((g) => g.task === task && g.metric === metric);
    const largest = gs.reduce((a, b) => (b.n_samples > a.n_samples ? b : a));
    const points = largest.points.flatMap((p) =>
      p.actual ? [{ model: p.model, score: p.mean, std: p.std, actual: p.actual.value }] : [],
    );
    const k = largest.kendall;
    if (points.length)
      charts.push({
        id: `estimator_${safeId(task)}_${safeId(metric)}`,
        section: 'estimators',
        spec: estimatorScatterSpec({
          title: `${metric} vs actual accuracy on ${task} (n=${largest.n_samples}): Kendall τ = ${fmt(k.value)} [${fmt(k.low)}, ${fmt(k.high)}]`,
          xTitle: `${metric} score`,
          yTitle: 'actual accuracy',
          points,
        }),
      });
    charts.push({
      id: `estimator_${safeId(task)}_${safeId(metric)}_vs_samples`,
      section: 'estimators',
      spec: linesSpec({
        title: `${metric} vs n_samples on ${task} (mean ± std over seeds)`,
        x: { title: 'n_samples', log: true },
        y: { title: `${metric} score` },
        series: [...new Set(gs.flatMap((g) => g.points.map((p) => p.model)))].map((model) => ({
          name: model,
          points: gs.flatMap((g) =>
            g.points
              .filter((p) => p.model === model)
              .map((p) => ({ x: g.n_samples, y: p.mean, low: p.mean - p.std, high: p.mean + p.std })),
          ),
        })),
      }),
    });
  }
  for (const [tag, series] of curveGroups(exp, warnings))
    charts.push({
      id: `curve_${safeId(tag)}`,
      section: 'curves',
      spec: curvesSpec({
        title: `${tag} (smoothing ${REPORT_SMOOTHING})`,
        x: { title: 'step' },
        y: { title: tag },
        smoothing: REPORT_SMOOTHING,
        series: series.map((s) => {
          const smoothed = debiasedEma(
            s.points.map((p) => p.value),
            REPORT_SMOOTHING,
          );
          return {
            name: s.run,
            points: s.points.map((p, i) => ({ x: p.step, y: p.value, smoothed: smoothed[i], step: p.step })),
          };
        }),
      }),
    });
  for (const a of exp.geometry) charts.push(...geometryCharts(a));
  return charts;
}
