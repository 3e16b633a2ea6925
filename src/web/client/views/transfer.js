// Transfer: the model × task heatmap of transfer.json (score, delta vs base, relative gain, transfer index) with
// the CI and n on hover and in the table below; a click on a cell opens that cell's samples.
import { fmt, heatmapSpec } from '/shared/charts.js';
import { api, embed, h, href, select, setParams } from '../util.js';

const METRICS = [
  { key: 'score', title: 'score', diverging: false },
  { key: 'delta_vs_base', title: 'delta vs base', diverging: true },
  { key: 'relative_gain', title: 'relative gain', diverging: true },
  { key: 'transfer_index', title: 'transfer index', diverging: true },
];

/** @param {HTMLElement} root @param {URLSearchParams} params */
export async function render(root, params) {
  const { transfer } = await api('/api/transfer');
  if (!transfer) {
    root.replaceChildren(
      h('h2', null, 'Transfer'),
      h('p', { class: 'muted' }, 'No transfer.json yet (tlab eval transfer writes it).'),
    );
    return;
  }
  const metric = METRICS.find((m) => m.key === params.get('metric')) ?? METRICS[0];
  const { models, tasks } = transfer.matrix;
  const cellOf = (/** @type {string} */ m, /** @type {string} */ t) =>
    transfer.cells.find((/** @type {any} */ c) => c.model === m && c.task === t);
  const spec = heatmapSpec({
    title: `transfer matrix: ${metric.title}`,
    rows: models,
    cols: tasks,
    rowTitle: 'model',
    colTitle: 'task',
    valueTitle: metric.title,
    diverging: metric.diverging,
    domain: metric.key === 'score' ? [0, 1] : undefined,
    clickable: true,
    cellWidth: 80,
    cellHeight: 34,
    cells: transfer.cells.map((/** @type {any} */ c) => {
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
  const chart = h('div', { class: 'chart', id: 'transfer-heatmap' });
  const table = h(
    'table',
    { id: 'transfer-table', dataset: { metric: metric.key } },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', null, 'model'),
        tasks.map((/** @type {string} */ t) => h('th', null, t)),
      ),
    ),
    h(
      'tbody',
      null,
      models.map((/** @type {string} */ m) =>
        h(
          'tr',
          null,
          h('th', null, m),
          tasks.map((/** @type {string} */ t) => {
            const c = cellOf(m, t);
            if (!c) return h('td', null, '');
            const s = c[metric.key];
            const attrs = {
              class: 'num',
              dataset: {
                model: m,
                task: t,
                ...(s.value !== null && c.status === 'done' ? { value: String(s.value) } : {}),
              },
              title: c.reason ?? s.reason ?? '',
            };
            if (c.status !== 'done') return h('td', attrs, c.status);
            return h(
              'td',
              attrs,
              h('a', { href: href('samples', { model: m, task: t }) }, s.value === null ? '–' : fmt(s.value)),
              s.low !== null ? h('span', { class: 'muted' }, ` [${fmt(s.low)}, ${fmt(s.high)}]`) : '',
              h('span', { class: 'muted' }, ` n=${c.n}`),
            );
          }),
        ),
      ),
    ),
  );
  root.replaceChildren(
    h('h2', null, 'Transfer'),
    h(
      'div',
      { class: 'controls' },
      h(
        'label',
        null,
        'show',
        select(
          'transfer-metric',
          METRICS.map((m) => m.key),
          metric.key,
          (v) => {
            setParams({ metric: v });
            render(root, new URLSearchParams({ metric: v }));
          },
          Object.fromEntries(METRICS.map((m) => [m.key, m.title])),
        ),
      ),
      h('span', { class: 'muted' }, 'hover a cell for its CI and n; click it for its samples'),
    ),
    chart,
    h('h3', null, `${metric.title} with 95% bootstrap CI`),
    table,
    transfer.excluded.length
      ? h(
          'div',
          null,
          h('h3', null, 'Excluded cells'),
          h(
            'ul',
            null,
            transfer.excluded.map((/** @type {any} */ x) =>
              h('li', null, `${x.model} × ${x.task}: ${x.status} — ${x.reason}`),
            ),
          ),
        )
      : '',
  );
  const view = await embed(chart, spec, 'transfer');
  view.addEventListener('click', (/** @type {any} */ _event, /** @type {any} */ item) => {
    const d = item?.datum;
    if (!d || d.row === undefined || d.col === undefined) return;
    const c = cellOf(d.row, d.col);
    if (c && c.status === 'done') location.hash = href('samples', { model: d.row, task: d.col });
  });
}
