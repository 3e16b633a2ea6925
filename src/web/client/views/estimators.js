// Estimators: each transferability estimator's score against the actual accuracy it predicts (one point per
// model), with Kendall τ and its CI, and the score against n_samples.
import { estimatorScatterSpec, fmt, linesSpec } from '/shared/charts.js';
import { api, embed, h, select, setParams } from '../util.js';

/** @param {HTMLElement} root @param {URLSearchParams} params */
export async function render(root, params) {
  const { groups, best } = await api('/api/estimators');
  if (groups.length === 0) {
    root.replaceChildren(
      h('h2', null, 'Estimators'),
      h('p', { class: 'muted' }, 'No estimator results under metrics/ yet.'),
    );
    return;
  }
  const tasks = [...new Set(groups.map((/** @type {any} */ g) => g.task))];
  const task = tasks.includes(params.get('task') ?? '')
    ? /** @type {string} */ (params.get('task'))
    : tasks[0];
  const inTask = groups.filter((/** @type {any} */ g) => g.task === task);
  const metrics = [...new Set(inTask.map((/** @type {any} */ g) => g.metric))];
  const sizes = [...new Set(inTask.map((/** @type {any} */ g) => g.n_samples))].sort((a, b) => a - b);
  const n = sizes.includes(Number(params.get('n'))) ? Number(params.get('n')) : sizes[sizes.length - 1];
  const charts = h('div', { class: 'charts' });
  const rows = inTask.filter((/** @type {any} */ g) => g.n_samples === n);
  const table = h(
    'table',
    { id: 'estimators-table' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['estimator', 'n_samples', 'models', 'Kendall τ', '95% CI', 'from', 'reliability'].map((t) =>
          h('th', null, t),
        ),
      ),
    ),
    h(
      'tbody',
      null,
      rows.map((/** @type {any} */ g) =>
        h(
          'tr',
          { dataset: { metric: g.metric } },
          h('td', null, g.metric),
          h('td', { class: 'num' }, String(g.n_samples)),
          h('td', { class: 'num' }, String(g.points.filter((/** @type {any} */ p) => p.actual).length)),
          h(
            'td',
            {
              class: 'num',
              dataset: {
                key: 'tau',
                ...(g.kendall.value !== null ? { value: String(g.kendall.value) } : {}),
              },
            },
            fmt(g.kendall.value),
          ),
          h('td', { dataset: { key: 'ci' } }, `[${fmt(g.kendall.low)}, ${fmt(g.kendall.high)}]`),
          h('td', null, g.kendall.source),
          h('td', null, g.kendall.reliability ?? ''),
        ),
      ),
    ),
  );
  const points = h(
    'table',
    { id: 'estimator-points' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['estimator', 'model', 'score (mean over seeds)', 'std', 'seeds', 'actual accuracy', 'from'].map(
          (t) => h('th', null, t),
        ),
      ),
    ),
    h(
      'tbody',
      null,
      rows.flatMap((/** @type {any} */ g) =>
        g.points.map((/** @type {any} */ p) =>
          h(
            'tr',
            { dataset: { metric: g.metric, model: p.model } },
            h('td', null, g.metric),
            h('td', null, p.model),
            h('td', { class: 'num', dataset: { key: 'score', value: String(p.mean) } }, fmt(p.mean, 4)),
            h('td', { class: 'num' }, fmt(p.std, 4)),
            h('td', { class: 'num' }, String(p.seeds)),
            h(
              'td',
              {
                class: 'num',
                dataset: { key: 'actual', ...(p.actual ? { value: String(p.actual.value) } : {}) },
              },
              p.actual ? fmt(p.actual.value) : '–',
            ),
            h('td', null, p.actual ? `${p.actual.source} (${p.actual.model})` : 'no eval cell'),
          ),
        ),
      ),
    ),
  );
  const bestTask = best?.[task];
  root.replaceChildren(
    h('h2', null, 'Estimators'),
    h(
      'div',
      { class: 'controls' },
      h(
        'label',
        null,
        'target task',
        select('estimators-task', tasks, task, (v) => {
          setParams({ task: v, n: null });
          render(root, new URLSearchParams({ task: v }));
        }),
      ),
      h(
        'label',
        null,
        'n_samples',
        select('estimators-n', sizes.map(String), String(n), (v) => {
          setParams({ n: v });
          render(root, new URLSearchParams({ task, n: v }));
        }),
      ),
      bestTask
        ? h(
            'span',
            { id: 'best-estimator' },
            `best on ${task}: ${bestTask.estimator} (τ = ${fmt(bestTask.kendall_tau)}; ${bestTask.reliability || (bestTask.informative ? 'informative' : 'not informative')})`,
          )
        : '',
    ),
    table,
    charts,
    h('h3', null, 'Scores and accuracies'),
    points,
  );
  for (const metric of metrics) {
    const g = rows.find((/** @type {any} */ x) => x.metric === metric);
    if (g) {
      const pts = g.points
        .filter((/** @type {any} */ p) => p.actual)
        .map((/** @type {any} */ p) => ({
          model: p.model,
          score: p.mean,
          std: p.std,
          actual: p.actual.value,
        }));
      const box = h('div', { class: 'chart', dataset: { chart: `scatter:${metric}` } });
      charts.append(box);
      await embed(
        box,
        estimatorScatterSpec({
          title: `${metric} vs actual (${task}, n=${n}): τ = ${fmt(g.kendall.value)} [${fmt(g.kendall.low)}, ${fmt(g.kendall.high)}]`,
          xTitle: `${metric} score`,
          yTitle: 'actual accuracy',
          points: pts,
        }),
        `estimator:${metric}`,
      );
    }
    const byModel = new Map();
    for (const x of inTask.filter((/** @type {any} */ y) => y.metric === metric))
      for (const p of x.points)
        byModel.set(p.model, [
          ...(byModel.get(p.model) ?? []),
          { x: x.n_samples, y: p.mean, low: p.mean - p.std, high: p.mean + p.std },
        ]);
    const box = h('div', { class: 'chart', dataset: { chart: `samples:${metric}` } });
    charts.append(box);
    await embed(
      box,
      linesSpec({
        title: `${metric} vs n_samples (${task})`,
        x: { title: 'n_samples', log: true },
        y: { title: `${metric} score` },
        series: [...byModel].map(([name, points]) => ({ name, points })),
      }),
      `samples:${metric}`,
    );
  }
}
