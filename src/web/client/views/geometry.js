// Geometry: intrinsic dimension, clustering ARI against each label set and neighbourhood overlap vs layer for the
// chosen conditions, linear-probe accuracy vs layer, and CKA matrices between the layers of two conditions.
import { heatmapSpec, linesSpec } from '/shared/charts.js';
import { api, embed, h, select, setParams } from '../util.js';

/** @param {HTMLElement} root @param {URLSearchParams} params */
export async function render(root, params) {
  const { analyses } = await api('/api/geometry');
  if (analyses.length === 0) {
    root.replaceChildren(
      h('h2', null, 'Geometry'),
      h('p', { class: 'muted' }, 'No geometry results (geometry/*.json) yet.'),
    );
    return;
  }
  const names = analyses.map((/** @type {any} */ a) => a.name);
  const a = analyses.find((/** @type {any} */ x) => x.name === params.get('analysis')) ?? analyses[0];
  const conditions = a.profiles.map((/** @type {any} */ p) => p.condition);
  const chosen = new Set(params.get('conditions') ? params.get('conditions')?.split(',') : conditions);
  const charts = h('div', { class: 'charts' });
  const draw = async () => {
    charts.replaceChildren();
    const profiles = a.profiles.filter((/** @type {any} */ p) => chosen.has(p.condition));
    const add = async (/** @type {string} */ name, /** @type {object} */ spec) => {
      const box = h('div', { class: 'chart', dataset: { chart: name } });
      charts.append(box);
      await embed(box, spec, `geometry:${name}`);
    };
    await add(
      'id',
      linesSpec({
        title: 'intrinsic dimension vs layer',
        x: { title: 'layer' },
        y: { title: 'ID' },
        legendTitle: 'condition',
        series: profiles.map((/** @type {any} */ p) => ({
          name: p.condition,
          points: p.layers
            .filter((/** @type {any} */ l) => l.id !== null)
            .map((/** @type {any} */ l) => ({ x: l.layer, y: l.id })),
        })),
      }),
    );
    const labels = [
      ...new Set(
        profiles.flatMap((/** @type {any} */ p) =>
          p.layers.flatMap((/** @type {any} */ l) => Object.keys(l.labels)),
        ),
      ),
    ];
    for (const label of labels)
      await add(
        `ari:${label}`,
        linesSpec({
          title: `ARI vs '${label}' by layer`,
          x: { title: 'layer' },
          y: { title: 'ARI' },
          legendTitle: 'condition',
          series: profiles.map((/** @type {any} */ p) => ({
            name: p.condition,
            points: p.layers
              .filter(
                (/** @type {any} */ l) => l.labels[label]?.ari !== null && l.labels[label]?.ari !== undefined,
              )
              .map((/** @type {any} */ l) => ({ x: l.layer, y: l.labels[label].ari })),
          })),
        }),
      );
    const overlaps = a.overlap.filter(
      (/** @type {any} */ o) => chosen.has(o.pair[0]) && chosen.has(o.pair[1]),
    );
    if (overlaps.length)
      await add(
        'overlap',
        linesSpec({
          title: `neighbourhood overlap χ_${overlaps[0].k} vs layer`,
          x: { title: 'layer' },
          y: { title: 'overlap' },
          legendTitle: 'pair',
          series: overlaps.map((/** @type {any} */ o) => ({
            name: `${o.pair[0]} / ${o.pair[1]}`,
            points: o.layers.map((/** @type {any} */ l) => ({ x: l.layer, y: l.value })),
          })),
        }),
      );
    const probeLabels = [...new Set(a.probes.map((/** @type {any} */ p) => p.label))];
    for (const label of probeLabels)
      await add(
        `probe:${label}`,
        linesSpec({
          title: `linear probe accuracy for '${label}' vs layer`,
          x: { title: 'layer' },
          y: { title: 'accuracy' },
          legendTitle: 'condition',
          series: conditions
            .filter((/** @type {string} */ c) => chosen.has(c))
            .map((/** @type {string} */ c) => ({
              name: c,
              points: a.probes
                .filter((/** @type {any} */ p) => p.condition === c && p.label === label)
                .map((/** @type {any} */ p) => ({ x: p.layer, y: p.accuracy })),
            })),
        }),
      );
    for (const c of a.cka)
      await add(
        `cka:${c.pair.join('/')}`,
        heatmapSpec({
          title: `CKA between layers (${c.pair[0]} × ${c.pair[1]})`,
          rows: c.layersA,
          cols: c.layersB,
          rowTitle: `${c.pair[0]} layer`,
          colTitle: `${c.pair[1]} layer`,
          valueTitle: 'CKA',
          domain: [0, 1],
          cellWidth: 48,
          cells: c.layersA.flatMap((/** @type {number} */ la, /** @type {number} */ i) =>
            c.layersB.map((/** @type {number} */ lb, /** @type {number} */ j) => ({
              row: la,
              col: lb,
              value: c.values[i]?.[j] ?? null,
            })),
          ),
        }),
      );
  };
  root.replaceChildren(
    h('h2', null, 'Geometry'),
    h(
      'div',
      { class: 'controls' },
      names.length > 1
        ? h(
            'label',
            null,
            'analysis',
            select('geometry-analysis', names, a.name, (v) => {
              setParams({ analysis: v, conditions: null });
              render(root, new URLSearchParams({ analysis: v }));
            }),
          )
        : h('span', null, `analysis: ${a.name}`),
      h(
        'fieldset',
        { id: 'geometry-conditions' },
        h('legend', null, 'conditions'),
        conditions.map((/** @type {string} */ c) =>
          h(
            'label',
            null,
            h('input', {
              type: 'checkbox',
              value: c,
              checked: chosen.has(c),
              onchange: (/** @type {Event} */ e) => {
                if (/** @type {HTMLInputElement} */ (e.target).checked) chosen.add(c);
                else chosen.delete(c);
                setParams({ conditions: [...chosen].join(',') });
                draw();
              },
            }),
            c,
          ),
        ),
      ),
    ),
    charts,
  );
  await draw();
}
