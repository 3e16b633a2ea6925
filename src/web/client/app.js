// The dashboard page: a hash router over the views, the experiment's name and warnings in the header, and live
// updates (server-sent events from /api/events) that re-read the view on show when result files change.
import { api, h, route, views } from './util.js';
import * as curves from './views/curves.js';
import * as estimators from './views/estimators.js';
import * as geometry from './views/geometry.js';
import * as playground from './views/playground.js';
import * as runs from './views/runs.js';
import * as samples from './views/samples.js';
import * as transfer from './views/transfer.js';

/** @type {Record<string, {render: (root: HTMLElement, params: URLSearchParams) => Promise<void>, live?: boolean}>} */
const VIEWS = { runs, curves, transfer, estimators, geometry, samples, sample: samples.detail, playground };

const root = /** @type {HTMLElement} */ (document.getElementById('view'));
let rendering = Promise.resolve();
let updates = 0;

// For tests and the console: the drawn vega views and a count of live updates applied.
// @ts-expect-error
window.tlab = { views, updates: () => updates };

async function show() {
  const { name, params } = route();
  const view = VIEWS[name] ?? VIEWS.runs;
  for (const a of document.querySelectorAll('#nav a'))
    a.classList.toggle(
      'active',
      /** @type {HTMLElement} */ (a).dataset.view === (name === 'sample' ? 'samples' : name),
    );
  root.dataset.ready = '';
  // the charts of the page being left go, with any tooltip they still show
  for (const v of views.values()) v.finalize();
  views.clear();
  for (const t of document.querySelectorAll('.vg-tooltip')) t.classList.remove('visible');
  try {
    await view.render(root, params);
  } catch (error) {
    root.replaceChildren(h('div', { class: 'error' }, `${/** @type {Error} */ (error).message}`));
  }
  root.dataset.ready = name;
}

async function header() {
  const e = await api('/api/experiment');
  document.title = `${e.name} — transferlab dashboard`;
  /** @type {HTMLElement} */ (document.getElementById('experiment-name')).textContent = e.name;
  const warn = /** @type {HTMLElement} */ (document.getElementById('warnings'));
  warn.replaceChildren(
    ...(e.warnings.length
      ? [
          h(
            'div',
            { class: 'warn' },
            h('b', null, 'Warnings'),
            h(
              'ul',
              null,
              e.warnings.map((/** @type {string} */ w) => h('li', null, w)),
            ),
          ),
        ]
      : []),
  );
}

function queue(/** @type {() => Promise<void>} */ job) {
  rendering = rendering.then(job, job);
  return rendering;
}

window.addEventListener('hashchange', () => queue(show));

const live = /** @type {HTMLElement} */ (document.getElementById('live'));
const events = new EventSource('/api/events');
events.addEventListener('version', () => live.classList.add('on'));
events.addEventListener('change', () => {
  live.classList.add('flash');
  setTimeout(() => live.classList.remove('flash'), 600);
  const view = VIEWS[route().name] ?? VIEWS.runs;
  if (view.live === false) return;
  queue(async () => {
    await header();
    await show();
    updates++;
  });
});
events.onerror = () => live.classList.remove('on');

queue(async () => {
  await header();
  await show();
});
