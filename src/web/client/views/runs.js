// Runs: every run record (stage, state, hyper-parameters, final metrics, duration) in a table that sorts and
// filters, exports what it shows as CSV, and parallel coordinates of the hyper-parameters against a chosen metric.
import { fmt, parallelCoordinatesSpec } from '/shared/charts.js';
import { api, csvField, download, embed, h, select, setParams, sortableTable } from '../util.js';

/** @param {unknown} v */
const shown = (v) =>
  typeof v === 'number'
    ? Number.isInteger(v)
      ? String(v)
      : fmt(v, 4)
    : v === null || v === undefined
      ? ''
      : String(v);

/** @param {HTMLElement} root @param {URLSearchParams} params */
export async function render(root, params) {
  const { runs, paramKeys, resultKeys } = await api('/api/runs');
  const stages = [...new Set(runs.map((/** @type {any} */ r) => r.stage))];
  const states = ['pending', 'running', 'done', 'failed'];
  const state = {
    q: params.get('q') ?? '',
    stage: params.get('stage') ?? '',
    status: params.get('state') ?? '',
    sort: params.get('sort') ?? undefined,
    desc: params.get('desc') === '1',
    metric:
      params.get('metric') ??
      resultKeys.find((/** @type {string} */ k) =>
        runs.some((/** @type {any} */ r) => typeof r.result?.[k] === 'number'),
      ) ??
      '',
  };
  /** @type {{key: string, title: string, value: (r: any) => any, show?: (r: any) => any, num?: boolean}[]} */
  const columns = [
    { key: 'name', title: 'name', value: (r) => r.name },
    { key: 'stage', title: 'stage', value: (r) => r.stage },
    {
      key: 'state',
      title: 'state',
      value: (r) => r.state,
      show: (r) => h('span', { class: `state-${r.state}` }, r.state),
    },
    ...paramKeys.map((/** @type {string} */ k) => ({
      key: `params.${k}`,
      title: k,
      value: (/** @type {any} */ r) => r.params?.[k] ?? null,
      show: (/** @type {any} */ r) => shown(r.params?.[k]),
      num: true,
    })),
    ...resultKeys.map((/** @type {string} */ k) => ({
      key: `result.${k}`,
      title: k,
      value: (/** @type {any} */ r) => r.result?.[k] ?? null,
      show: (/** @type {any} */ r) => shown(r.result?.[k]),
      num: true,
    })),
    {
      key: 'seconds',
      title: 'seconds',
      value: (r) => r.seconds ?? null,
      show: (r) => (typeof r.seconds === 'number' ? r.seconds.toFixed(1) : ''),
      num: true,
    },
    { key: 'attempts', title: 'attempts', value: (r) => r.attempts, num: true },
    { key: 'started_at', title: 'started', value: (r) => r.started_at ?? '' },
    { key: 'error', title: 'error', value: (r) => r.error ?? '' },
  ];
  const matches = (/** @type {any} */ r) => {
    if (state.stage && r.stage !== state.stage) return false;
    if (state.status && r.state !== state.status) return false;
    if (!state.q) return true;
    const text = [
      r.name,
      r.id,
      r.stage,
      r.state,
      ...Object.entries(r.params ?? {}).map(([k, v]) => `${k}=${v}`),
    ]
      .join(' ')
      .toLowerCase();
    return state.q
      .toLowerCase()
      .split(/\s+/)
      .every((w) => text.includes(w));
  };
  const tableBox = h('div');
  const chartBox = h('div', { class: 'chart', id: 'parallel' });
  const count = h('span', { class: 'muted', id: 'runs-count' });
  const drawTable = () => {
    const rows = runs.filter(matches);
    count.textContent = `${rows.length} of ${runs.length} runs`;
    tableBox.replaceChildren(
      sortableTable(rows, columns, {
        id: 'runs-table',
        sort: state.sort,
        desc: state.desc,
        onSort: (key, desc) => {
          state.sort = key;
          state.desc = desc;
          setParams({ sort: key, desc: desc ? 1 : null });
        },
        rowAttrs: (r) => ({ dataset: { run: r.id } }),
      }),
    );
    return rows;
  };
  const drawChart = async () => {
    const rows = runs
      .filter(matches)
      .filter((/** @type {any} */ r) => typeof r.result?.[state.metric] === 'number');
    const dims = paramKeys.filter((/** @type {string} */ k) =>
      rows.some((/** @type {any} */ r) => r.params?.[k] !== undefined && r.params?.[k] !== null),
    );
    if (!state.metric || rows.length === 0 || dims.length === 0) {
      chartBox.replaceChildren(
        h('p', { class: 'muted' }, 'No runs with hyper-parameters and this metric to draw.'),
      );
      return;
    }
    const spec = parallelCoordinatesSpec({
      title: `hyper-parameters vs ${state.metric}`,
      dimensions: [...dims, state.metric],
      metricTitle: state.metric,
      rows: rows.map((/** @type {any} */ r) => ({
        run: r.name,
        metric: r.result[state.metric],
        values: { ...r.params, [state.metric]: r.result[state.metric] },
      })),
    });
    await embed(chartBox, spec, 'parallel');
  };
  const exportCsv = () => {
    const rows = runs.filter(matches);
    const lines = [columns.map((c) => csvField(c.title)).join(',')];
    for (const r of rows) lines.push(columns.map((c) => csvField(c.value(r))).join(','));
    download('runs.csv', `${lines.join('\n')}\n`);
  };
  const numericResults = resultKeys.filter((/** @type {string} */ k) =>
    runs.some((/** @type {any} */ r) => typeof r.result?.[k] === 'number'),
  );
  root.replaceChildren(
    h('h2', null, 'Runs'),
    h(
      'div',
      { class: 'controls' },
      h(
        'label',
        null,
        'filter',
        h('input', {
          id: 'runs-filter',
          type: 'search',
          value: state.q,
          placeholder: 'name, stage, param=value …',
          oninput: (/** @type {Event} */ e) => {
            state.q = /** @type {HTMLInputElement} */ (e.target).value;
            setParams({ q: state.q });
            drawTable();
            drawChart();
          },
        }),
      ),
      h(
        'label',
        null,
        'stage',
        select(
          'runs-stage',
          ['', ...stages],
          state.stage,
          (v) => {
            state.stage = v;
            setParams({ stage: v });
            drawTable();
            drawChart();
          },
          { '': 'all' },
        ),
      ),
      h(
        'label',
        null,
        'state',
        select(
          'runs-state',
          ['', ...states],
          state.status,
          (v) => {
            state.status = v;
            setParams({ state: v });
            drawTable();
            drawChart();
          },
          { '': 'all' },
        ),
      ),
      h('button', { id: 'runs-export', onclick: exportCsv }, 'export CSV'),
      count,
    ),
    tableBox,
    h('h3', null, 'Parallel coordinates'),
    h(
      'div',
      { class: 'controls' },
      h(
        'label',
        null,
        'metric',
        select('parallel-metric', numericResults, state.metric, (v) => {
          state.metric = v;
          setParams({ metric: v });
          drawChart();
        }),
      ),
    ),
    chartBox,
  );
  drawTable();
  await drawChart();
}
