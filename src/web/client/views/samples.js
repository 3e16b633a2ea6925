// Samples (error analysis): every evaluated example of a (model, task) cell with prediction, reference and score,
// filtered by wrong answers, a grader detail or uid; and a page per uid with its raw images, the prompt and every
// model's answer side by side, with bookmarks (the store `tlab bookmark` uses) and next/previous bookmark.
import { fmt } from '/shared/charts.js';
import { api, fileUrl, h, href, select, setParams, sortableTable } from '../util.js';

/** @param {unknown} v */
const text = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

/** The text of a logged prompt (messages with text and image parts). */
function promptText(/** @type {unknown} */ prompt) {
  if (!Array.isArray(prompt)) return text(prompt ?? '');
  return prompt
    .map(
      (m) =>
        `${m.role}: ${Array.isArray(m.content) ? m.content.map((/** @type {any} */ p) => (p.type === 'text' ? p.text : `[${p.type}]`)).join('\n') : text(m.content)}`,
    )
    .join('\n');
}

/** @param {HTMLElement} root @param {URLSearchParams} params */
export async function render(root, params) {
  const { grid } = await api('/api/transfer');
  if (!grid) {
    root.replaceChildren(
      h('h2', null, 'Samples'),
      h('p', { class: 'muted' }, 'No eval_grid.json yet (tlab eval grid writes it).'),
    );
    return;
  }
  const done = grid.cells.filter((/** @type {any} */ c) => c.status === 'done');
  const models = grid.models.map((/** @type {any} */ m) => m.name);
  const tasks = grid.tasks.map((/** @type {any} */ t) => t.name);
  const first = done[0] ?? grid.cells[0];
  const model = models.includes(params.get('model'))
    ? /** @type {string} */ (params.get('model'))
    : first.model;
  const task = tasks.includes(params.get('task')) ? /** @type {string} */ (params.get('task')) : first.task;
  const state = {
    wrong: params.get('wrong') === '1',
    detail: params.get('detail') ?? '',
    uid: params.get('uid') ?? '',
  };
  const go = (/** @type {Record<string, string>} */ p) => {
    location.hash = href('samples', { model, task, ...p });
  };
  const controls = h(
    'div',
    { class: 'controls' },
    h(
      'label',
      null,
      'model',
      select('samples-model', models, model, (v) => go({ model: v })),
    ),
    h(
      'label',
      null,
      'task',
      select('samples-task', tasks, task, (v) => go({ task: v })),
    ),
  );
  let data;
  try {
    data = await api(`/api/samples?${new URLSearchParams({ model, task })}`);
  } catch (error) {
    root.replaceChildren(
      h('h2', null, 'Samples'),
      controls,
      h('div', { class: 'error' }, /** @type {Error} */ (error).message),
    );
    return;
  }
  const { cell, rows } = data;
  const detailValues = [
    ...new Set(
      rows.flatMap((/** @type {any} */ r) =>
        Object.entries(r.details ?? {})
          .filter(([, v]) => v === null || typeof v !== 'object')
          .map(([k, v]) => `${k}=${v}`),
      ),
    ),
  ].sort();
  const tableBox = h('div');
  const count = h('span', { class: 'muted', id: 'samples-count' });
  const draw = () => {
    const shown = rows.filter((/** @type {any} */ r) => {
      if (state.wrong && r.score >= 1) return false;
      if (state.uid && !r.uid.includes(state.uid)) return false;
      if (state.detail) {
        const [k, ...v] = state.detail.split('=');
        if (`${r.details?.[k]}` !== v.join('=')) return false;
      }
      return true;
    });
    count.textContent = `${shown.length} of ${rows.length} samples`;
    tableBox.replaceChildren(
      sortableTable(
        shown,
        [
          {
            key: 'uid',
            title: 'uid',
            value: (r) => r.uid,
            show: (r) => h('a', { class: 'uid', href: href('sample', { task, uid: r.uid, model }) }, r.uid),
          },
          {
            key: 'prediction',
            title: 'prediction',
            value: (r) => r.prediction,
            show: (r) => h('span', { class: r.score >= 1 ? 'good' : 'bad' }, JSON.stringify(r.prediction)),
          },
          { key: 'reference', title: 'reference', value: (r) => text(r.reference) },
          { key: 'score', title: 'score', value: (r) => r.score, show: (r) => fmt(r.score), num: true },
          {
            key: 'details',
            title: 'grader details',
            value: (r) =>
              Object.entries(r.details ?? {})
                .map(([k, v]) => `${k}=${text(v)}`)
                .join(' '),
          },
          { key: 'images', title: 'images', value: (r) => (r.images ?? []).length, num: true },
          {
            key: 'latency',
            title: 'latency (ms)',
            value: (r) => r.latency_ms,
            show: (r) => (typeof r.latency_ms === 'number' ? r.latency_ms.toFixed(0) : ''),
            num: true,
          },
        ],
        { id: 'samples-table', rowAttrs: (r) => ({ dataset: { uid: r.uid, score: String(r.score) } }) },
      ),
    );
  };
  controls.append(
    h(
      'label',
      null,
      h('input', {
        id: 'samples-wrong',
        type: 'checkbox',
        checked: state.wrong,
        onchange: (/** @type {Event} */ e) => {
          state.wrong = /** @type {HTMLInputElement} */ (e.target).checked;
          setParams({ wrong: state.wrong ? 1 : null });
          draw();
        },
      }),
      'wrong only',
    ),
    h(
      'label',
      null,
      'grader detail',
      select(
        'samples-detail',
        ['', ...detailValues],
        state.detail,
        (v) => {
          state.detail = v;
          setParams({ detail: v });
          draw();
        },
        { '': 'any' },
      ),
    ),
    h(
      'label',
      null,
      'uid',
      h('input', {
        id: 'samples-uid',
        type: 'search',
        value: state.uid,
        oninput: (/** @type {Event} */ e) => {
          state.uid = /** @type {HTMLInputElement} */ (e.target).value;
          setParams({ uid: state.uid });
          draw();
        },
      }),
    ),
    count,
  );
  root.replaceChildren(
    h('h2', null, `Samples: ${model} on ${task}`),
    controls,
    h(
      'p',
      { id: 'samples-cell' },
      `cell ${cell.status}`,
      cell.status === 'done'
        ? `: ${cell.topline_metric} = ${fmt(cell.score)} over n = ${cell.n}`
        : ` — ${cell.reason ?? cell.error ?? ''}`,
    ),
    tableBox,
  );
  draw();
}

export const detail = {
  /** The detail page is not re-read on live updates: a note being typed would be lost. */
  live: false,
  /** @param {HTMLElement} root @param {URLSearchParams} params */
  async render(root, params) {
    const task = params.get('task') ?? '';
    const uid = params.get('uid') ?? '';
    const from = params.get('model');
    const d = await api(`/api/sample?${new URLSearchParams({ task, uid })}`);
    const marks = d.bookmarks;
    const at = marks.findIndex((/** @type {any} */ b) => b.task === task && b.uid === uid);
    const mark = at >= 0 ? marks[at] : null;
    const neighbour = (/** @type {number} */ step) => {
      if (marks.length === 0) return null;
      const i = at >= 0 ? (at + step + marks.length) % marks.length : step > 0 ? 0 : marks.length - 1;
      return marks[i];
    };
    const open = (/** @type {any} */ b) => {
      if (b) location.hash = href('sample', { task: b.task, uid: b.uid });
    };
    const note = h('input', {
      id: 'bookmark-note',
      type: 'text',
      placeholder: 'note',
      value: mark?.note ?? '',
    });
    const status = h(
      'span',
      { id: 'bookmark-status', class: 'muted' },
      mark ? `bookmarked (${at + 1} of ${marks.length})` : `${marks.length} bookmarks`,
    );
    const toggle = h(
      'button',
      {
        id: 'bookmark-toggle',
        onclick: async () => {
          if (mark) await api('/api/bookmarks', { method: 'DELETE', body: JSON.stringify({ task, uid }) });
          else
            await api('/api/bookmarks', {
              method: 'POST',
              body: JSON.stringify({ task, uid, note: /** @type {HTMLInputElement} */ (note).value }),
            });
          await detail.render(root, params);
          root.dataset.ready = 'sample';
        },
      },
      mark ? 'remove bookmark' : 'bookmark',
    );
    const images = d.images.length
      ? h(
          'div',
          { class: 'detail-images' },
          d.images.map((/** @type {string} */ f) => h('img', { src: fileUrl(f), alt: f, title: f })),
        )
      : h(
          'p',
          { class: 'muted' },
          d.example?.metadata.images.length ? 'images are outside the experiment folder' : 'no images',
        );
    root.replaceChildren(
      h(
        'p',
        null,
        from
          ? h('a', { href: href('samples', { model: from, task }) }, `← ${from} on ${task}`)
          : h('a', { href: href('samples', { task }) }, '← samples'),
      ),
      h('h2', null, `${task} · `, h('code', null, uid)),
      h(
        'div',
        { class: 'controls' },
        toggle,
        note,
        status,
        h(
          'button',
          { id: 'bookmark-prev', onclick: () => open(neighbour(-1)), disabled: marks.length === 0 },
          '◀ previous bookmark',
        ),
        h(
          'button',
          { id: 'bookmark-next', onclick: () => open(neighbour(1)), disabled: marks.length === 0 },
          'next bookmark ▶',
        ),
      ),
      images,
      h('h3', null, 'Prompt'),
      h('pre', { id: 'sample-prompt' }, promptText(d.prompt)),
      h('p', null, 'reference: ', h('b', { id: 'sample-reference', class: 'good' }, text(d.reference))),
      h('h3', null, `Answers (${d.answers.length} models)`),
      h(
        'div',
        { class: 'answers', id: 'sample-answers' },
        d.answers.map((/** @type {any} */ a) =>
          h(
            'div',
            {
              class: `answer ${a.score >= 1 ? 'right' : 'wrong'}`,
              dataset: { model: a.model, score: String(a.score) },
            },
            h('b', null, a.model),
            h('pre', null, a.prediction === '' ? '(empty answer)' : a.prediction),
            h('span', null, `score ${fmt(a.score)}`),
            h(
              'div',
              { class: 'muted' },
              Object.entries(a.details ?? {})
                .map(([k, v]) => `${k}=${text(v)}`)
                .join(' '),
            ),
          ),
        ),
      ),
    );
  },
};
