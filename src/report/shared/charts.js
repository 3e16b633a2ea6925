// Vega-lite specs for the study's charts, shared by the static report (rendered to SVG in Node by vega) and the
// dashboard (drawn in the browser by vega-embed). Plain JavaScript with no imports, so the dashboard serves this
// file as it is; the types are in charts.d.ts. Every chart's data is one named dataset ('points') so a page (or a
// test) can read back what was drawn with view.data('points').

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
/** Legend symbols at full strength whatever the opacity of the faint layers (bands, raw values). */
const LEGEND = { symbolOpacity: 1, symbolStrokeWidth: 2 };

/** @param {number | null | undefined} v @param {number} [digits] */
export function fmt(v, digits = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return v.toFixed(digits);
}

/** @param {{low?: number | null, high?: number | null}} c */
function ciText(c) {
  return c.low === null || c.low === undefined || c.high === null || c.high === undefined
    ? 'none'
    : `[${fmt(c.low)}, ${fmt(c.high)}]`;
}

/**
 * A matrix as coloured cells with their values written in: the transfer matrix (rows models, columns tasks) or a
 * CKA matrix (rows and columns layers). Undefined cells are grey with their status.
 * @param {import('./charts').HeatmapInput} p
 */
export function heatmapSpec(p) {
  const values = p.cells.map((c) => ({
    row: String(c.row),
    col: String(c.col),
    value: c.value === null || c.value === undefined || !Number.isFinite(c.value) ? null : c.value,
    text: c.value === null || c.value === undefined ? (c.status ?? '–') : fmt(c.value, p.digits ?? 2),
    ci: ciText(c),
    n: c.n ?? null,
    note: c.note ?? '',
    desc: `cell ${c.row} ${c.col}`,
  }));
  const domain = p.domain ?? undefined;
  const scale = p.diverging
    ? { scheme: 'redblue', domainMid: 0, ...(domain ? { domain } : {}) }
    : { scheme: 'blues', ...(domain ? { domain } : {}) };
  const tooltip = [
    { field: 'row', title: p.rowTitle },
    { field: 'col', title: p.colTitle },
    { field: 'value', title: p.valueTitle, format: '.3f' },
    { field: 'ci', title: '95% CI' },
    { field: 'n', title: 'n' },
    { field: 'note', title: 'note' },
  ];
  const x = {
    field: 'col',
    type: 'nominal',
    sort: p.cols.map(String),
    title: p.colTitle,
    axis: { labelAngle: -30 },
  };
  const y = { field: 'row', type: 'nominal', sort: p.rows.map(String), title: p.rowTitle };
  return {
    $schema: SCHEMA,
    title: p.title,
    background: 'white',
    data: { name: 'points', values },
    width: Math.max(120, p.cols.length * (p.cellWidth ?? 64)),
    height: Math.max(60, p.rows.length * (p.cellHeight ?? 30)),
    encoding: { x, y },
    layer: [
      {
        transform: [{ filter: 'datum.value === null' }],
        mark: { type: 'rect', fill: '#e8e8e8', stroke: 'white' },
        encoding: { tooltip, description: { field: 'desc' } },
      },
      {
        transform: [{ filter: 'datum.value !== null' }],
        mark: { type: 'rect', stroke: 'white', cursor: p.clickable ? 'pointer' : 'default' },
        encoding: {
          color: { field: 'value', type: 'quantitative', title: p.valueTitle, scale },
          tooltip,
          description: { field: 'desc' },
        },
      },
      // the value written in the cell answers hover and click like the cell itself
      {
        mark: { type: 'text', fontSize: 11, color: '#111', cursor: p.clickable ? 'pointer' : 'default' },
        encoding: { text: { field: 'text' }, tooltip },
      },
    ],
  };
}

/** @param {import('./charts').AxisInput} a @param {string} field */
function axis(a, field) {
  return {
    field,
    type: 'quantitative',
    title: a.title,
    scale: a.log ? { type: 'log' } : { type: 'linear', zero: a.zero ?? false },
  };
}

/**
 * Lines with points, one per series, with an error band where low/high are given (score vs n_samples, geometry
 * profiles vs layer).
 * @param {import('./charts').LinesInput} p
 */
export function linesSpec(p) {
  const values = p.series.flatMap((s) =>
    s.points
      .filter((pt) => Number.isFinite(pt.y) && (!p.y.log || pt.y > 0) && (!p.x.log || pt.x > 0))
      .map((pt) => ({ series: s.name, x: pt.x, y: pt.y, low: pt.low ?? null, high: pt.high ?? null })),
  );
  const color = { field: 'series', type: 'nominal', title: p.legendTitle ?? null, legend: LEGEND };
  const tooltip = [
    { field: 'series', title: p.legendTitle ?? 'series' },
    { field: 'x', title: p.x.title },
    { field: 'y', title: p.y.title, format: '.4f' },
  ];
  return {
    $schema: SCHEMA,
    title: p.title,
    background: 'white',
    width: p.width ?? 420,
    height: p.height ?? 260,
    data: { name: 'points', values },
    // the line layer first: a shared legend takes its symbols from the first layer
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: { x: axis(p.x, 'x'), y: axis(p.y, 'y'), color, tooltip },
      },
      {
        transform: [{ filter: 'isValid(datum.low) && isValid(datum.high)' }],
        mark: { type: 'area', opacity: 0.18 },
        encoding: {
          x: axis(p.x, 'x'),
          y: axis(p.y, 'low'),
          y2: { field: 'high' },
          color,
        },
      },
    ],
  };
}

/**
 * Training curves: the smoothed value as a line per run (and tag), the raw values faint with it when smoothing
 * is on, as TensorBoard draws them.
 * @param {import('./charts').CurvesInput} p
 */
export function curvesSpec(p) {
  const values = p.series.flatMap((s) =>
    s.points
      .filter(
        (pt) =>
          Number.isFinite(pt.y) && (!p.y.log || (pt.y > 0 && pt.smoothed > 0)) && (!p.x.log || pt.x > 0),
      )
      .map((pt) => ({ series: s.name, x: pt.x, y: pt.y, smoothed: pt.smoothed, step: pt.step })),
  );
  const color = { field: 'series', type: 'nominal', title: null, legend: LEGEND };
  // the smoothed line first (the legend takes its symbols from the first layer), raw values faint after it
  const layers = [
    {
      mark: { type: 'line', strokeWidth: 2 },
      encoding: {
        x: axis(p.x, 'x'),
        y: axis(p.y, 'smoothed'),
        color,
        tooltip: [
          { field: 'series', title: 'run' },
          { field: 'step', title: 'step' },
          { field: 'y', title: 'value', format: '.4f' },
          { field: 'smoothed', title: 'smoothed', format: '.4f' },
        ],
      },
    },
  ];
  if (p.smoothing > 0)
    layers.push({
      mark: { type: 'line', opacity: 0.25, strokeWidth: 1 },
      encoding: { x: axis(p.x, 'x'), y: axis(p.y, 'y'), color, detail: { field: 'series' } },
    });
  return {
    $schema: SCHEMA,
    title: p.title,
    background: 'white',
    width: p.width ?? 520,
    height: p.height ?? 260,
    data: { name: 'points', values },
    layer: layers,
  };
}

/**
 * Estimator score against the accuracy it predicts, one point per model, with ± one standard deviation over
 * seeds as a horizontal rule.
 * @param {import('./charts').EstimatorScatterInput} p
 */
export function estimatorScatterSpec(p) {
  const values = p.points.map((pt) => ({
    model: pt.model,
    x: pt.score,
    y: pt.actual,
    x1: pt.score - (pt.std ?? 0),
    x2: pt.score + (pt.std ?? 0),
  }));
  const x = { field: 'x', type: 'quantitative', title: p.xTitle, scale: { zero: false } };
  const y = { field: 'y', type: 'quantitative', title: p.yTitle, scale: { zero: false } };
  return {
    $schema: SCHEMA,
    title: p.title,
    background: 'white',
    width: p.width ?? 360,
    height: p.height ?? 260,
    data: { name: 'points', values },
    layer: [
      {
        mark: { type: 'rule' },
        encoding: { x: { field: 'x1', type: 'quantitative' }, x2: { field: 'x2' }, y },
      },
      {
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x,
          y,
          color: { field: 'model', type: 'nominal', title: null },
          tooltip: [
            { field: 'model' },
            { field: 'x', title: p.xTitle, format: '.4f' },
            { field: 'y', title: p.yTitle, format: '.4f' },
          ],
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 7, dy: -7, fontSize: 10 },
        encoding: { x, y, text: { field: 'model' } },
      },
    ],
  };
}

/**
 * Parallel coordinates of runs: one vertical axis per hyper-parameter (numbers as they are, categories by sorted
 * rank) and a last one for the chosen metric, each scaled to its own range; lines coloured by the metric.
 * @param {import('./charts').ParallelInput} p
 */
export function parallelCoordinatesSpec(p) {
  const keys = p.dimensions.map((d) => d.replace(/[.[\]\\]/g, '_'));
  const categories = p.dimensions.map((d) => {
    const vals = p.rows.map((r) => r.values[d]);
    return vals.some((v) => typeof v !== 'number')
      ? [...new Set(vals.filter((v) => v !== null && v !== undefined).map(String))].sort()
      : null;
  });
  const values = [];
  for (const r of p.rows)
    p.dimensions.forEach((d, i) => {
      const raw = r.values[d];
      if (raw === null || raw === undefined) return;
      const cats = categories[i];
      const v = cats ? cats.indexOf(String(raw)) : Number(raw);
      if (!Number.isFinite(v)) return;
      values.push({
        run: r.run,
        key: keys[i],
        value: v,
        label: typeof raw === 'number' && !Number.isInteger(raw) ? fmt(raw, 4) : String(raw),
        metric: r.metric,
      });
    });
  return {
    $schema: SCHEMA,
    title: p.title,
    background: 'white',
    width: p.width ?? Math.max(360, keys.length * 110),
    height: p.height ?? 260,
    data: { name: 'points', values },
    transform: [
      {
        joinaggregate: [
          { op: 'min', field: 'value', as: 'min' },
          { op: 'max', field: 'value', as: 'max' },
        ],
        groupby: ['key'],
      },
      {
        calculate: 'datum.max > datum.min ? (datum.value - datum.min) / (datum.max - datum.min) : 0.5',
        as: 'norm',
      },
    ],
    layer: [
      {
        mark: { type: 'rule', color: '#bbb' },
        encoding: {
          x: { field: 'key', type: 'nominal', sort: keys, title: null },
          detail: { aggregate: 'count' },
        },
      },
      {
        mark: { type: 'line', strokeWidth: 2, opacity: 0.8 },
        encoding: {
          x: { field: 'key', type: 'nominal', sort: keys, title: null, axis: { labelAngle: 0 } },
          y: { field: 'norm', type: 'quantitative', axis: null },
          detail: { field: 'run', type: 'nominal' },
          color: {
            field: 'metric',
            type: 'quantitative',
            title: p.metricTitle,
            scale: { scheme: 'viridis' },
          },
          tooltip: [{ field: 'run' }, { field: 'key', title: 'axis' }, { field: 'label', title: 'value' }],
        },
      },
      {
        // the values at each axis' ends, so the scale of every axis can be read
        transform: [{ filter: 'datum.norm === 0 || datum.norm === 1 || datum.max === datum.min' }],
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: '#333' },
        encoding: {
          x: { field: 'key', type: 'nominal', sort: keys },
          y: { field: 'norm', type: 'quantitative' },
          text: { field: 'label' },
        },
      },
    ],
  };
}
