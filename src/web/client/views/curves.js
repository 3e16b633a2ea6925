// Curves: training and eval scalars from every run's metrics.jsonl, runs overlaid, one chart per tag, smoothed as
// TensorBoard does (debiased EMA, weight 0 to 0.999), with log axes and a step or wall-time x axis.
import { curvesSpec } from '/shared/charts.js';
import { debiasedEma } from '/shared/smoothing.js';
import { api, embed, h, select, setParams } from '../util.js';

/** @param {HTMLElement} root @param {URLSearchParams} params */
export async function render(root, params) {
  const { series, warnings } = await api('/api/curves');
  if (series.length === 0) {
    root.replaceChildren(
      h('h2', null, 'Curves'),
      h('p', { class: 'muted' }, 'No training logs (metrics.jsonl) in this experiment yet.'),
    );
    return;
  }
  const tags = [...new Set(series.map((/** @type {any} */ s) => s.tag))].sort();
  const runs = [...new Set(series.map((/** @type {any} */ s) => s.run))];
  const chosenRuns = new Set(params.get('runs') ? params.get('runs')?.split(',') : runs);
  const defaultTags = tags.filter((t) => /loss|accuracy/.test(t));
  const chosenTags = new Set(
    params.get('tags') ? params.get('tags')?.split(',') : defaultTags.length ? defaultTags : tags.slice(0, 2),
  );
  const state = {
    smoothing: Math.min(0.999, Math.max(0, Number(params.get('smoothing') ?? 0.6) || 0)),
    x: params.get('x') === 'wall' ? 'wall' : 'step',
    logY: params.get('logy') === '1',
    logX: params.get('logx') === '1',
  };
  const charts = h('div', { class: 'charts' });
  const value = h('output', { id: 'smoothing-value' }, state.smoothing.toFixed(3));
  let pending = 0;
  const draw = async () => {
    const job = ++pending;
    const boxes = [];
    for (const tag of tags.filter((t) => chosenTags.has(t))) {
      const lines = series
        .filter((/** @type {any} */ s) => s.tag === tag && chosenRuns.has(s.run))
        .map((/** @type {any} */ s) => {
          const smoothed = debiasedEma(
            s.points.map((/** @type {any} */ p) => p.value),
            state.smoothing,
          );
          return {
            name: s.run,
            points: s.points.map((/** @type {any} */ p, /** @type {number} */ i) => ({
              x: state.x === 'wall' ? p.wall : p.step,
              y: p.value,
              smoothed: smoothed[i],
              step: p.step,
            })),
          };
        });
      const spec = curvesSpec({
        title: tag,
        x: { title: state.x === 'wall' ? 'wall time (s)' : 'step', log: state.logX },
        y: { title: tag, log: state.logY },
        smoothing: state.smoothing,
        series: lines,
      });
      const box = h('div', { class: 'chart', dataset: { tag } });
      boxes.push({ box, spec, tag });
    }
    if (job !== pending) return;
    charts.replaceChildren(...boxes.map((b) => b.box));
    for (const b of boxes) {
      if (job !== pending) return; // a newer draw (the slider moved on) replaces these charts
      await embed(b.box, b.spec, `curve:${b.tag}`);
    }
  };
  const checkboxes = (
    /** @type {string} */ name,
    /** @type {string[]} */ items,
    /** @type {Set<string>} */ chosen,
    /** @type {string} */ param,
  ) =>
    h(
      'fieldset',
      { id: `curves-${name}` },
      h('legend', null, name),
      items.map((item) =>
        h(
          'label',
          null,
          h('input', {
            type: 'checkbox',
            value: item,
            checked: chosen.has(item),
            onchange: (/** @type {Event} */ e) => {
              if (/** @type {HTMLInputElement} */ (e.target).checked) chosen.add(item);
              else chosen.delete(item);
              setParams({ [param]: [...chosen].join(',') });
              draw();
            },
          }),
          item,
        ),
      ),
    );
  root.replaceChildren(
    h('h2', null, 'Curves'),
    ...(warnings.length ? [h('div', { class: 'warn' }, warnings.join('; '))] : []),
    h(
      'div',
      { class: 'controls' },
      h(
        'label',
        null,
        'smoothing',
        h('input', {
          id: 'smoothing',
          type: 'range',
          min: '0',
          max: '0.999',
          step: '0.001',
          value: String(state.smoothing),
          oninput: (/** @type {Event} */ e) => {
            state.smoothing = Number(/** @type {HTMLInputElement} */ (e.target).value);
            value.textContent = state.smoothing.toFixed(3);
            setParams({ smoothing: state.smoothing });
            draw();
          },
        }),
        value,
      ),
      h(
        'label',
        null,
        'x axis',
        select(
          'curves-x',
          ['step', 'wall'],
          state.x,
          (v) => {
            state.x = v;
            setParams({ x: v === 'wall' ? 'wall' : null });
            draw();
          },
          { step: 'step', wall: 'wall time' },
        ),
      ),
      h(
        'label',
        null,
        h('input', {
          id: 'curves-logy',
          type: 'checkbox',
          checked: state.logY,
          onchange: (/** @type {Event} */ e) => {
            state.logY = /** @type {HTMLInputElement} */ (e.target).checked;
            setParams({ logy: state.logY ? 1 : null });
            draw();
          },
        }),
        'log y',
      ),
      h(
        'label',
        null,
        h('input', {
          id: 'curves-logx',
          type: 'checkbox',
          checked: state.logX,
          onchange: (/** @type {Event} */ e) => {
            state.logX = /** @type {HTMLInputElement} */ (e.target).checked;
            setParams({ logx: state.logX ? 1 : null });
            draw();
          },
        }),
        'log x',
      ),
    ),
    h(
      'div',
      { class: 'controls' },
      checkboxes('runs', runs, chosenRuns, 'runs'),
      checkboxes('tags', tags, chosenTags, 'tags'),
    ),
    charts,
  );
  await draw();
}
