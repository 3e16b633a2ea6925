/**
 * `tlab report`: one self-contained HTML page for a study — summary, runs, the transfer matrix, estimator score vs
 * actual accuracy with Kendall τ and CIs, score vs n_samples, learning curves, geometry profiles and a sample of
 * failures with their images — that opens from disk: charts are SVG rendered here and inlined, images are data
 * URLs, and a Content-Security-Policy with no sources but data: images forbids any request. Every chart is also
 * written as charts/<id>.svg and .png. The folder is built beside the target and moved into place.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { messageText } from '../data/task-format.ts';
import type { GraderLogRow } from '../eval/grid/schema.ts';
import { tempPathFor, writeFileAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import { estimatorGroups } from './estimator-points.ts';
import { type ExperimentData, loadExperiment } from './experiment.ts';
import { summaryBest } from './experiment-types.ts';
import { type Column, esc, inlineSvg, table } from './html.ts';
import { realPathInside } from './inside.ts';
import { renderSvg, svgToPng } from './plot.ts';
import { type ChartSection, type ReportChart, reportCharts, TRANSFER_METRICS } from './report-charts.ts';
import { cellSamples, taskDirOf } from './samples.ts';
import { fmt } from './shared/charts.js';

export interface ReportOptions {
  /** Output folder (default <experiment>/report). */
  outDir?: string;
  /** Failures shown per (model, task) cell (default 4) and in all (default 48). */
  failuresPerCell?: number;
  maxFailures?: number;
  quiet?: boolean;
}

export interface ReportResult {
  index: string;
  charts: string[];
  failures: number;
  warnings: string[];
}

const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
nav{padding:6px 24px;background:#e9eef3;position:sticky;top:0}nav a{margin-right:14px;color:#1f3b57}
main{padding:8px 24px 40px}section{margin:18px 0 28px}h2{border-bottom:2px solid #1f3b57;padding-bottom:3px}
table{border-collapse:collapse;margin:8px 0;background:#fff;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef2f6}.num{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px}figcaption{font-size:12px;color:#555}
.warn{background:#fff4e0;border-left:4px solid #e0a000;padding:6px 10px}.fail{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px}
.card{background:#fff;border:1px solid #ddd;padding:8px}.card img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #eee;margin-right:4px}
.card pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:4px;margin:4px 0}.bad{color:#b00020}.good{color:#0a7d32}
.state-failed{color:#b00020}.state-running{color:#a06000}.state-done{color:#0a7d32}`;

/** Writes the report of `experimentDir`; returns the page's path, the chart files and any warnings. */
export async function writeReport(experimentDir: string, options: ReportOptions = {}): Promise<ReportResult> {
  const exp = loadExperiment(experimentDir);
  const outDir = resolve(options.outDir ?? join(exp.dir, 'report'));
  checkOutDir(outDir);
  const warnings = [...exp.warnings];
  const charts = reportCharts(exp, warnings);
  const progress = new Progress({
    total: charts.length + 1,
    label: 'report',
    unit: 'charts',
    silent: options.quiet,
  });
  const tmp = tempPathFor(outDir);
  mkdirSync(join(tmp, 'charts'), { recursive: true });
  try {
    const svgs = new Map<string, string>();
    for (const c of charts) {
      const svg = await renderSvg(c.spec);
      writeFileAtomic(join(tmp, 'charts', `${c.id}.svg`), svg);
      writeFileAtomic(join(tmp, 'charts', `${c.id}.png`), svgToPng(svg));
      svgs.set(c.id, svg);
      progress.tick(1, c.id);
    }
    const failures = await failureCards(exp, options, warnings);
    const html = page(exp, charts, svgs, failures.html, warnings);
    writeFileAtomic(join(tmp, 'index.html'), html);
    progress.finish();
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(tmp, outDir);
    return {
      index: join(outDir, 'index.html'),
      charts: charts.flatMap((c) => [
        join(outDir, 'charts', `${c.id}.svg`),
        join(outDir, 'charts', `${c.id}.png`),
      ]),
      failures: failures.count,
      warnings,
    };
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** The report replaces its own folder only: an existing folder must be empty or an earlier report. */
function checkOutDir(outDir: string): void {
  if (!existsSync(outDir)) return;
  const entries = readdirSync(outDir);
  if (entries.length > 0 && !entries.includes('index.html'))
    throw new TlabError(
      `--out ${outDir}: the folder exists and is not a report (no index.html); the report would replace it`,
      'give a new or empty folder, or an earlier report folder',
    );
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>\n${body}\n</section>`;
}

function figures(charts: ReportChart[], svgs: Map<string, string>, which: ChartSection): string {
  const list = charts.filter((c) => c.section === which);
  if (!list.length) return '';
  return `<div class="charts">${list
    .map(
      (c) =>
        `<figure id="chart-${esc(c.id)}">${inlineSvg(svgs.get(c.id) ?? '', `c-${c.id}`)}<figcaption>charts/${esc(c.id)}.svg · .png</figcaption></figure>`,
    )
    .join('\n')}</div>`;
}

function summarySection(exp: ExperimentData): string {
  const counts = new Map<string, Map<string, number>>();
  for (const r of exp.runs) {
    const byState = counts.get(r.stage) ?? new Map<string, number>();
    byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    counts.set(r.stage, byState);
  }
  const states = ['done', 'running', 'pending', 'failed'];
  const rows = [...counts.entries()].map(([stage, m]) => ({ stage, m }));
  const best = summaryBest(exp.summary);
  const notes = exp.summary?.notes ?? [];
  return [
    `<p>Folder <code>${esc(exp.dir)}</code>${exp.summary?.experiment.updated_at ? `, updated ${esc(exp.summary.experiment.updated_at)}` : ''}.</p>`,
    rows.length
      ? table(
          rows,
          [
            { title: 'stage', cell: (r) => r.stage },
            ...states.map((s) => ({
              title: s,
              cell: (r: (typeof rows)[number]) => r.m.get(s) ?? 0,
              className: 'num',
            })),
          ],
          'id="run-counts"',
        )
      : '<p>No run records (runs/*/run.json) yet.</p>',
    best.length
      ? `<h3>Best estimator per task</h3>${table(best, [
          { title: 'task', cell: (b) => b.task },
          { title: 'estimator', cell: (b) => b.estimator },
          {
            title: 'Kendall τ',
            cell: (b) => fmt(b.kendall_tau),
            value: (b) => b.kendall_tau,
            className: 'num',
          },
          {
            title: 'reliability',
            cell: (b) => b.reliability || (b.informative ? 'informative' : 'not informative'),
          },
        ])}`
      : '',
    notes.length ? `<h3>Notes</h3><ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '',
  ].join('\n');
}

function runsSection(exp: ExperimentData): string {
  if (!exp.runs.length) return '<p>No run records yet.</p>';
  return table(
    exp.runs,
    [
      { title: 'name', cell: (r) => r.name },
      { title: 'stage', cell: (r) => r.stage },
      { title: 'state', cell: (r) => r.state, className: '' },
      {
        title: 'params',
        cell: (r) =>
          Object.entries(r.params)
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
      },
      {
        title: 'result',
        cell: (r) =>
          Object.entries(r.result ?? {})
            .filter(([, v]) => v === null || typeof v !== 'object')
            .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v, 4) : v}`)
            .join(' '),
      },
      {
        title: 'seconds',
        cell: (r) => (typeof r.seconds === 'number' ? r.seconds.toFixed(1) : ''),
        className: 'num',
      },
      { title: 'error', cell: (r) => r.error ?? '' },
    ],
    'id="runs-table"',
  );
}

function transferSection(exp: ExperimentData, charts: ReportChart[], svgs: Map<string, string>): string {
  const t = exp.transfer;
  if (!t) return '<p>No transfer.json yet (<code>tlab eval transfer</code> writes it).</p>';
  const tables = TRANSFER_METRICS.map((m) => {
    const rows = t.matrix.models.map((model) => ({ model }));
    const cellOf = (model: string, task: string) => t.cells.find((x) => x.model === model && x.task === task);
    const columns: Column<{ model: string }>[] = [
      { title: 'model', cell: (r) => r.model },
      ...t.matrix.tasks.map((task) => ({
        title: task,
        className: 'num',
        cell: ({ model }: { model: string }) => {
          const c = cellOf(model, task);
          if (!c) return '';
          if (c.status !== 'done') return c.status;
          const s = c[m.key];
          if (s.value === null) return '–';
          return `${fmt(s.value)}${s.low !== null ? ` [${fmt(s.low)}, ${fmt(s.high)}]` : ''} n=${c.n}`;
        },
        value: ({ model }: { model: string }) => cellOf(model, task)?.[m.key].value,
      })),
    ];
    return `<h3>${esc(m.title)}</h3>${table(rows, columns, `class="transfer" data-metric="${m.key}"`)}`;
  }).join('\n');
  return `${figures(charts, svgs, 'transfer')}\n${tables}`;
}

function estimatorsSection(exp: ExperimentData, charts: ReportChart[], svgs: Map<string, string>): string {
  const groups = estimatorGroups(exp.estimators, exp.grid, exp.summary);
  if (!groups.length) return '<p>No estimator results under metrics/ yet.</p>';
  const rows = groups.filter((g) => g.kendall.value !== null);
  return `${figures(charts, svgs, 'estimators')}\n${table(
    rows,
    [
      { title: 'task', cell: (g) => g.task },
      { title: 'estimator', cell: (g) => g.metric },
      { title: 'n_samples', cell: (g) => g.n_samples, className: 'num' },
      { title: 'models', cell: (g) => g.points.filter((p) => p.actual).length, className: 'num' },
      {
        title: 'Kendall τ',
        cell: (g) => fmt(g.kendall.value),
        value: (g) => g.kendall.value,
        className: 'num',
      },
      { title: '95% CI', cell: (g) => `[${fmt(g.kendall.low)}, ${fmt(g.kendall.high)}]` },
      { title: 'from', cell: (g) => g.kendall.source },
      { title: 'reliability', cell: (g) => g.kendall.reliability ?? '' },
    ],
    'id="estimators-table"',
  )}`;
}

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

/** A thumbnail as a data URL (small images are scaled up without smoothing, so grid cells stay sharp). */
async function thumbnail(path: string): Promise<string> {
  if (!MIME[extname(path).toLowerCase()]) throw new TlabError(`${path}: not an image type the report embeds`);
  const png = await sharp(readFileSync(path))
    .resize({ width: 128, height: 128, fit: 'contain', background: '#ffffff', kernel: 'nearest' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

function promptText(prompt: unknown): string {
  if (!Array.isArray(prompt)) return String(prompt ?? '');
  return prompt
    .map((m) =>
      m && typeof m === 'object' && Array.isArray((m as { content?: unknown }).content)
        ? messageText(m as Parameters<typeof messageText>[0])
        : '',
    )
    .filter(Boolean)
    .join('\n');
}

async function failureCards(
  exp: ExperimentData,
  options: ReportOptions,
  warnings: string[],
): Promise<{ html: string; count: number }> {
  const perCell = options.failuresPerCell ?? 4;
  const max = options.maxFailures ?? 48;
  const cards: string[] = [];
  for (const c of exp.grid?.cells ?? []) {
    if (c.status !== 'done' || cards.length >= max) continue;
    let rows: GraderLogRow[];
    try {
      rows = cellSamples(exp.dir, exp.grid, c.model, c.task);
    } catch (error) {
      warnings.push((error as Error).message);
      continue;
    }
    const wrong = rows
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.score < 1)
      .sort((a, b) => a.r.score - b.r.score || a.i - b.i)
      .slice(0, Math.min(perCell, max - cards.length));
    const taskDir = taskDirOf(exp.dir, exp.grid, c.task);
    for (const { r } of wrong) {
      const imgs: string[] = [];
      for (const f of r.images) {
        const path = taskDir ? realPathInside(taskDir, f) : null;
        if (!path) {
          imgs.push(`<em>${esc(f)} is not in the experiment folder</em>`);
          continue;
        }
        try {
          imgs.push(`<img alt="${esc(f)}" src="${await thumbnail(path)}">`);
        } catch (error) {
          warnings.push((error as Error).message);
        }
      }
      cards.push(
        `<div class="card failure" data-model="${esc(c.model)}" data-task="${esc(c.task)}" data-uid="${esc(r.uid)}"><b>${esc(c.model)}</b> on <b>${esc(c.task)}</b> · <code>${esc(r.uid)}</code> · score ${fmt(r.score)}<div>${imgs.join('')}</div><pre>${esc(promptText(r.prompt))}</pre>answer <span class="bad">${esc(JSON.stringify(r.prediction))}</span> · reference <span class="good">${esc(typeof r.reference === 'string' ? r.reference : JSON.stringify(r.reference))}</span></div>`,
      );
    }
  }
  return {
    html: cards.length ? `<div class="fail">${cards.join('\n')}</div>` : '<p>No graded failures.</p>',
    count: cards.length,
  };
}

function page(
  exp: ExperimentData,
  charts: ReportChart[],
  svgs: Map<string, string>,
  failures: string,
  warnings: string[],
): string {
  const sections: [string, string, string][] = [
    ['summary', 'Summary', summarySection(exp)],
    ['runs', 'Runs', runsSection(exp)],
    ['transfer', 'Transfer matrix', transferSection(exp, charts, svgs)],
    ['estimators', 'Estimators vs actual accuracy', estimatorsSection(exp, charts, svgs)],
    [
      'curves',
      'Learning curves',
      figures(charts, svgs, 'curves') || '<p>No training logs (metrics.jsonl) yet.</p>',
    ],
    ['geometry', 'Geometry', figures(charts, svgs, 'geometry') || '<p>No geometry results yet.</p>'],
    ['failures', 'Failures', failures],
  ];
  const warn = warnings.length
    ? `<div class="warn" id="warnings"><b>Warnings</b><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(exp.name)} — transferlab report</title>
<style>${STYLE}</style></head>
<body><header><h1>${esc(exp.name)}</h1>transferlab study report</header>
<nav>${sections.map(([id, title]) => `<a href="#${id}">${esc(title)}</a>`).join('')}</nav>
<main>${warn}
${sections.map(([id, title, body]) => section(id, title, body)).join('\n')}
</main></body></html>
`;
}
