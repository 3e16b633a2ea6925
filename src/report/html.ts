/** Small HTML helpers for the static report: escaping, tables, and SVG made safe to inline several times. */

export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export interface Column<T> {
  title: string;
  cell: (row: T) => string | number | null | undefined;
  /** The exact value behind the cell (data-value), for numbers shown rounded. */
  value?: (row: T) => number | string | null | undefined;
  className?: string;
}

/** A table; cells are escaped text unless the column returns markup through `html`. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], attrs = ''): string {
  const head = columns.map((c) => `<th>${esc(c.title)}</th>`).join('');
  const body = rows
    .map((r) => {
      const tds = columns.map((c) => {
        const v = c.value?.(r);
        const data = v === undefined || v === null ? '' : ` data-value="${esc(v)}"`;
        const cls = c.className ? ` class="${c.className}"` : '';
        return `<td${cls}${data}>${esc(c.cell(r))}</td>`;
      });
      return `<tr>${tds.join('')}</tr>`;
    })
    .join('\n');
  return `<table${attrs ? ` ${attrs}` : ''}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/**
 * Vega's SVG with its element ids (clip paths, gradients) prefixed, so several charts inlined in one page do not
 * resolve each other's `url(#id)` references.
 */
export function inlineSvg(svg: string, prefix: string): string {
  return svg
    .replace(/^<\?xml[^>]*>\s*/, '')
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}
