// Small helpers of the dashboard's views: JSON requests, DOM building, the hash route's parameters, charts.

/** @param {string} path @param {RequestInit} [init] */
export async function api(path, init) {
  const r = await fetch(path, {
    ...init,
    headers: init?.body ? { 'Content-Type': 'application/json', ...(init.headers ?? {}) } : init?.headers,
  });
  const text = await r.text();
  let body;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { error: text };
  }
  if (!r.ok) {
    const e = new Error(body.error ?? `HTTP ${r.status}`);
    // @ts-expect-error status for callers that show 404s differently
    e.status = r.status;
    throw e;
  }
  return body;
}

/**
 * h('td', {class: 'num', dataset: {value: 1}}, 'text', child)
 * @param {string} tag @param {Record<string, any> | null} [attrs] @param {...any} children
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') /** @type {any} */ (el)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** The current route: view name and its parameters, from "#/view?a=1". */
export function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, query] = hash.split('?');
  return { name: name || 'runs', params: new URLSearchParams(query ?? '') };
}

/** Changes some parameters of the current route without re-rendering (filters, sort order, sliders). */
export function setParams(/** @type {Record<string, string | number | null>} */ changes) {
  const { name, params } = route();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === '') params.delete(k);
    else params.set(k, String(v));
  }
  const q = params.toString();
  history.replaceState(null, '', `#/${name}${q ? `?${q}` : ''}`);
}

/** A link to another view. */
export function href(/** @type {string} */ name, /** @type {Record<string, string>} */ params = {}) {
  const q = new URLSearchParams(params).toString();
  return `#/${name}${q ? `?${q}` : ''}`;
}

/** Views drawn on the page, by name, for the page's own code and for tests (window.tlab.views). */
export const views = new Map();

/**
 * Draws a vega-lite spec with vega-embed (SVG, no action menu, CSP-safe expression interpreter) and keeps the
 * view under `name`.
 * @param {HTMLElement} el @param {object} spec @param {string} name
 */
export async function embed(el, spec, name) {
  // @ts-expect-error vegaEmbed is the UMD global of /vendor/vega-embed.min.js
  const result = await window.vegaEmbed(el, spec, { renderer: 'svg', actions: false, ast: true });
  const old = views.get(name);
  if (old && old !== result.view) old.finalize();
  views.set(name, result.view);
  return result.view;
}

/** A table whose columns sort on click; `rows` are objects, columns say how to show and sort them. */
export function sortableTable(
  /** @type {any[]} */ rows,
  /** @type {{key: string, title: string, value: (r: any) => any, show?: (r: any) => any, num?: boolean}[]} */ columns,
  /** @type {{sort?: string, desc?: boolean, onSort?: (key: string, desc: boolean) => void, id?: string, rowAttrs?: (r: any) => object}} */ opts = {},
) {
  let sort = opts.sort;
  let desc = opts.desc ?? false;
  const table = h('table', { id: opts.id });
  const draw = () => {
    const col = columns.find((c) => c.key === sort);
    const sorted = col
      ? [...rows].sort((a, b) => {
          const x = col.value(a);
          const y = col.value(b);
          const cmp =
            x === y
              ? 0
              : x === null || x === undefined
                ? 1
                : y === null || y === undefined
                  ? -1
                  : typeof x === 'number' && typeof y === 'number'
                    ? x - y
                    : String(x).localeCompare(String(y));
          return desc ? -cmp : cmp;
        })
      : rows;
    table.replaceChildren(
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          columns.map((c) =>
            h(
              'th',
              {
                class: `sortable${c.key === sort ? ` sorted${desc ? '' : ' asc'}` : ''}`,
                dataset: { key: c.key },
                onclick: () => {
                  if (sort === c.key) desc = !desc;
                  else {
                    sort = c.key;
                    desc = false;
                  }
                  opts.onSort?.(sort, desc);
                  draw();
                },
              },
              c.title,
            ),
          ),
        ),
      ),
      h(
        'tbody',
        null,
        sorted.map((r) =>
          h(
            'tr',
            opts.rowAttrs?.(r) ?? null,
            columns.map((c) => {
              const v = c.value(r);
              return h(
                'td',
                {
                  class: c.num ? 'num' : '',
                  dataset: { key: c.key, ...(typeof v === 'number' ? { value: String(v) } : {}) },
                },
                c.show ? c.show(r) : (v ?? ''),
              );
            }),
          ),
        ),
      ),
    );
  };
  draw();
  return table;
}

/** A <select> of options; calls onchange with the chosen value. */
export function select(
  /** @type {string} */ id,
  /** @type {string[]} */ options,
  /** @type {string} */ value,
  /** @type {(v: string) => void} */ onchange,
  labels = /** @type {Record<string,string>} */ ({}),
) {
  return h(
    'select',
    { id, onchange: (/** @type {Event} */ e) => onchange(/** @type {HTMLSelectElement} */ (e.target).value) },
    options.map((o) => h('option', { value: o, selected: o === value }, labels[o] ?? o)),
  );
}

export function csvField(/** @type {unknown} */ v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Offers text as a download. */
export function download(/** @type {string} */ name, /** @type {string} */ text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A URL under /files/ for a path relative to the experiment folder. */
export function fileUrl(/** @type {string} */ rel) {
  return `/files/${rel.split('/').map(encodeURIComponent).join('/')}`;
}
