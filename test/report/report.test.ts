/**
 * `tlab report` on a small real study (test/web/study.ts): the page opens from file:// in headless Chromium with
 * no console error and no request but the page itself (its Content-Security-Policy allows none); the numbers it
 * shows equal transfer.json and summary.json; every chart is an inlined SVG and a .svg/.png pair on disk; failures
 * come with their images as data URLs; an existing folder that is not a report is never replaced. A screenshot is
 * written to $TLAB_SCREENSHOT_DIR (default <tmpdir>/transferlab-screenshots/report), which is kept.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { GraderLogRow } from '../../src/eval/grid/schema.ts';
import type { TransferResult } from '../../src/eval/transfer.ts';
import { type ExperimentSummary, summaryEstimators } from '../../src/report/experiment-types.ts';
import { fmt } from '../../src/report/shared/charts.js';
import { type ReportResult, writeReport } from '../../src/report/write-report.ts';
import { browserSkipReason, launchBrowser } from '../browser/launch.ts';
import { buildStudyExperiment, type StudyFixture, tlabInProcess } from '../web/study.ts';

const skip = browserSkipReason();
const root = mkdtempSync(join(tmpdir(), 'tlab-report-'));
const SHOTS = join(process.env.TLAB_SCREENSHOT_DIR ?? join(tmpdir(), 'transferlab-screenshots'), 'report');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('tlab report', () => {
  let study: StudyFixture;
  let report: ReportResult;

  before(async () => {
    study = await buildStudyExperiment(join(root, 'study'));
    report = await writeReport(study.dir, { quiet: true });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('the page inlines every chart, and every chart is also an SVG and a PNG file', () => {
    assert.equal(report.index, join(study.dir, 'report', 'index.html'));
    const html = readFileSync(report.index, 'utf8');
    assert.match(
      html,
      /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">/,
    );
    assert.doesNotMatch(html, /<script|<link rel="stylesheet"|src="http|href="http/);
    const files = readdirSync(join(study.dir, 'report', 'charts'));
    const ids = files.filter((f) => f.endsWith('.svg')).map((f) => f.slice(0, -4));
    assert.equal(report.charts.length, 2 * ids.length);
    for (const id of ids) {
      assert.ok(files.includes(`${id}.png`), id);
      const png = readFileSync(join(study.dir, 'report', 'charts', `${id}.png`));
      assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], `${id}.png is a PNG`);
      assert.match(html, new RegExp(`<figure id="chart-${id}"><svg`), `${id} is inlined`);
    }
    for (const want of [
      'transfer_score',
      'transfer_transfer_index',
      'estimator_grid1_logme',
      'estimator_grid1_logme_vs_samples',
      'curve_train_loss',
      'geometry_text_id',
      'geometry_text_cka_base__ft-grid1',
    ])
      assert.ok(ids.includes(want), `chart ${want} (have ${ids.join(', ')})`);
    // inlined SVGs do not share element ids
    const svgIds = [...html.matchAll(/\bid="(c-[^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(svgIds).size, svgIds.length);
  });

  test('the numbers shown equal transfer.json and summary.json; failures show their images', () => {
    const html = readFileSync(report.index, 'utf8');
    const transfer = readJson<TransferResult>(join(study.dir, 'transfer.json'));
    for (const metric of ['score', 'delta_vs_base', 'relative_gain', 'transfer_index'] as const) {
      const table = html.slice(
        html.indexOf(`data-metric="${metric}"`),
        html.indexOf('</table>', html.indexOf(`data-metric="${metric}"`)),
      );
      const values = [...table.matchAll(/data-value="([^"]+)">([^<]*)</g)].map(
        (m) => [Number(m[1]), m[2]] as const,
      );
      const want = transfer.cells.filter((c) => c.status === 'done' && c[metric].value !== null);
      assert.equal(values.length, want.length, metric);
      for (const [i, c] of want.entries()) {
        assert.equal(values[i][0], c[metric].value);
        assert.ok(
          values[i][1].startsWith(fmt(c[metric].value)) && values[i][1].endsWith(`n=${c.n}`),
          values[i][1],
        );
      }
    }
    const summary = readJson<ExperimentSummary>(join(study.dir, 'summary.json'));
    const est = html.slice(html.indexOf('id="estimators-table"'));
    const correlations = summaryEstimators(summary);
    assert.equal(correlations.length, 4, 'two estimators on two target tasks');
    for (const { task, metric, ...s } of correlations)
      assert.match(
        est,
        new RegExp(
          `<td>${task}</td><td>${metric}</td><td class="num"[^>]*>${s.n_samples}</td><td class="num"[^>]*>\\d+</td><td class="num" data-value="${s.kendall_tau.value}">${fmt(s.kendall_tau.value).replace('.', '\\.')}</td>`,
        ),
        `${task} ${metric}`,
      );
    for (const note of summary.notes ?? []) assert.ok(html.includes(note.replace(/'/g, '&#39;')), note);
    // failure cards: wrong answers of the grader logs, images embedded
    const cards = html.match(/class="card failure"/g) ?? [];
    assert.equal(cards.length, report.failures);
    assert.ok(report.failures > 0);
    const shapes = html.match(/data-task="shapes" data-uid="([^"]+)"/);
    assert.ok(shapes, 'a failure of the image task is shown');
    const row = readFileSync(join(study.dir, 'grader_logs', 'vlm-base', 'shapes.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GraderLogRow)
      .find((r) => r.uid === shapes[1]);
    assert.ok(row && row.score < 1);
    assert.match(html, /<img alt="images\/[0-9a-f]+\.png" src="data:image\/png;base64,/);
  });

  test('it opens from file:// in Chromium with no console error and no request but the page', {
    skip: skip ?? false,
  }, async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.setViewportSize({ width: 1300, height: 900 });
      const url = pathToFileURL(report.index).href;
      await page.goto(url);
      await page.waitForLoadState('load');
      assert.deepEqual(
        requests.filter((r) => !r.startsWith('data:')),
        [url],
      );
      assert.ok((await page.locator('figure svg').count()) >= 10);
      const images = await page
        .locator('.card img')
        .evaluateAll((els) => els.map((e) => (e as unknown as { naturalWidth: number }).naturalWidth));
      assert.ok(images.length > 0 && images.every((w) => w === 128), 'every failure image decoded');
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
      assert.deepEqual(browser.consoleErrors, []);
    } finally {
      await browser.close();
    }
  });

  test('tlab report --out writes elsewhere and replaces an earlier report, never another folder', async () => {
    const out = join(root, 'elsewhere');
    const printed = JSON.parse(
      await tlabInProcess(['report', study.dir, '--out', out, '--json', '--failures-per-cell', '1']),
    ) as ReportResult;
    assert.equal(printed.index, join(out, 'index.html'));
    assert.ok(printed.failures > 0 && printed.failures <= 15);
    assert.ok(existsSync(join(out, 'charts', 'transfer_score.svg')));
    await tlabInProcess(['report', study.dir, '--out', out, '--quiet']); // an earlier report is replaced
    const other = join(root, 'precious');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'keep me');
    await assert.rejects(
      writeReport(study.dir, { outDir: other, quiet: true }),
      /exists and is not a report \(no index\.html\)/,
    );
    assert.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'keep me');
    assert.deepEqual(
      readdirSync(root).filter((f) => f.includes('.tmp-')),
      [],
      'no half-written folder left',
    );
  });

  test('a malformed result file is a warning naming it, and the rest is still reported', async () => {
    const copy = join(root, 'broken');
    mkdirSync(join(copy, 'runs', 'bad'), { recursive: true });
    writeFileSync(join(copy, 'transfer.json'), readFileSync(join(study.dir, 'transfer.json')));
    writeFileSync(join(copy, 'eval_grid.json'), '{"schema": "transferlab-eval-grid/1", "cells": 3');
    writeFileSync(
      join(copy, 'runs', 'bad', 'run.json'),
      JSON.stringify({ schema: 'transferlab-run/1', id: 'bad', name: 'x', stage: 'train', state: 'done' }),
    );
    const r = await writeReport(copy, { quiet: true });
    assert.ok(
      r.warnings.some((w) => w.startsWith(join(copy, 'eval_grid.json'))),
      r.warnings.join('\n'),
    );
    assert.ok(
      r.warnings.some((w) => w.includes('stage: "train" is not one of data, tokenizer, pretrain')),
      r.warnings.join('\n'),
    );
    const html = readFileSync(r.index, 'utf8');
    assert.match(html, /id="warnings"/);
    assert.match(html, /data-metric="score"/);
  });
});
