/**
 * The dashboard in Debian's headless Chromium (playwright-core) on a small real study built in this test
 * (test/web/study.ts): every view loads with no console error and shows the numbers of the result files; a click
 * on a heatmap cell leads to a wrong answer and its raw image; the smoothing slider changes the drawn curve and
 * the smoothed values equal the exponentially weighted mean (closed form, computed here); a bookmark added in
 * the page is listed by `tlab bookmark list`; live updates follow a run record that changes; the playground
 * streams an answer from a `tlab serve` process, and runs the ONNX export in the browser with onnxruntime-web,
 * both giving the eval grid's greedy answer; both exchanges land in the JSONL log. Screenshots of every view are
 * written to $TLAB_SCREENSHOT_DIR (default <tmpdir>/transferlab-screenshots/dashboard), which is kept.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { EvalGrid, GraderLogRow } from '../../src/eval/grid/schema.ts';
import type { TransferResult } from '../../src/eval/transfer.ts';
import {
  type ExperimentSummary,
  type RunRecord,
  summaryEstimators,
} from '../../src/report/experiment-types.ts';
import { fmt } from '../../src/report/shared/charts.js';
import { type DashboardHandle, startDashboard } from '../../src/web/server.ts';
import { type BrowserSession, browserSkipReason, launchBrowser } from '../browser/launch.ts';
import { buildStudyExperiment, type StudyFixture } from './study.ts';

// Globals of the page, for the functions that run in the browser (the project's TypeScript has no DOM library).
interface PageElement {
  value: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  dispatchEvent(event: unknown): boolean;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
};
declare const location: { hash: string };
/** What the page drew: vega's datasets hold plain records of the chart's fields. */
type Drawn = Record<string, string | number | null>;
interface DrawnView {
  data(name: string): Drawn[];
  scale(name: string): { type: string };
}
declare const window: { tlab: { views: { get(name: string): DrawnView }; updates(): number } };
declare class Event {
  constructor(type: string, init?: { bubbles?: boolean });
}

const skip = browserSkipReason();
const root = mkdtempSync(join(tmpdir(), 'tlab-dashboard-'));
export const SHOTS = join(
  process.env.TLAB_SCREENSHOT_DIR ?? join(tmpdir(), 'transferlab-screenshots'),
  'dashboard',
);

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const logRows = (dir: string, model: string, task: string): GraderLogRow[] =>
  readFileSync(join(dir, 'grader_logs', model, `${task}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as GraderLogRow);

async function waitView(page: Page, name: string): Promise<void> {
  await page.waitForSelector(`#view[data-ready="${name}"]`, { timeout: 60000 });
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

describe('dashboard in headless Chromium', { skip: skip ?? false }, () => {
  let study: StudyFixture;
  let dash: DashboardHandle;
  let browser: BrowserSession;
  let page: Page;
  let serve: ChildProcess;
  let serveUrl: string;
  let grid: EvalGrid;

  before(async () => {
    study = await buildStudyExperiment(join(root, 'study'));
    grid = readJson<EvalGrid>(join(study.dir, 'eval_grid.json'));
    // A real `tlab serve` process for the playground: a fine-tuned text model and the fine-tuned VLM.
    serve = spawn(
      process.execPath,
      [
        'bin/tlab.js',
        'serve',
        study.models['ft-grid1'],
        study.models['vlm-shapes'],
        '--port',
        '0',
        '--served-model-name',
        'ft-grid1',
        '--served-model-name',
        'vlm-shapes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    serveUrl = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      serve.stdout?.on('data', (c) => {
        out += c;
        const m = /^(http:\/\/\S+)\n/m.exec(out);
        if (m) resolve(m[1]);
      });
      serve.stderr?.on('data', (c) => {
        err += c;
      });
      serve.on('exit', (code) => reject(new Error(`tlab serve exited ${code}: ${err}`)));
    });
    dash = await startDashboard({ dir: study.dir, port: 0, serveUrl, pollMs: 300 });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewportSize({ width: 1300, height: 900 });
  });

  after(async () => {
    await browser?.close();
    await dash?.close();
    if (serve && serve.exitCode === null) {
      const exited = new Promise((r) => serve.once('exit', r));
      serve.kill('SIGTERM');
      await exited;
    }
    rmSync(root, { recursive: true, force: true });
  });

  test('every view loads with no console error (screenshots of each)', async () => {
    const views = ['runs', 'curves', 'transfer', 'estimators', 'geometry', 'samples', 'playground'];
    for (const v of views) {
      await page.goto(`${dash.url}#/${v}`);
      await waitView(page, v);
      assert.equal(await page.locator('#view .error').count(), 0, `${v}: ${await page.textContent('#view')}`);
      assert.ok(
        (await page.locator('#view svg, #view table, #view textarea').count()) > 0,
        `${v} drew something`,
      );
      await shot(page, v);
    }
    assert.equal(await page.textContent('#experiment-name'), 'study');
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('Runs: the table shows every run record as its run.json says; sort, filter and CSV export', async () => {
    await page.goto(`${dash.url}#/runs`);
    await waitView(page, 'runs');
    const records = readdirSync(join(study.dir, 'runs')).map((id) =>
      readJson<RunRecord>(join(study.dir, 'runs', id, 'run.json')),
    );
    const rows = page.locator('#runs-table tbody tr');
    assert.equal(await rows.count(), records.length);
    for (const r of records) {
      const row = page.locator(`#runs-table tr[data-run="${r.id}"]`);
      assert.equal(await row.locator('td[data-key="state"]').textContent(), r.state);
      assert.equal(await row.locator('td[data-key="stage"]').textContent(), r.stage);
      if (typeof r.result?.train_loss === 'number')
        assert.equal(
          Number(await row.locator('td[data-key="result.train_loss"]').getAttribute('data-value')),
          r.result.train_loss,
        );
      if (typeof r.seconds === 'number')
        assert.equal(await row.locator('td[data-key="seconds"]').textContent(), r.seconds.toFixed(1));
    }
    // sort by train_loss (descending after two clicks) and filter by a parameter
    await page.click('#runs-table th[data-key="result.train_loss"]');
    await page.click('#runs-table th[data-key="result.train_loss"]');
    const losses = await page
      .locator('#runs-table td[data-key="result.train_loss"][data-value]')
      .evaluateAll((els) =>
        els.map((e) => Number((e as unknown as { dataset: Record<string, string> }).dataset.value)),
      );
    assert.deepEqual(
      losses,
      [...losses].sort((a, b) => b - a),
    );
    await page.fill('#runs-filter', 'strategy=full');
    assert.equal(await rows.count(), records.filter((r) => r.params.strategy === 'full').length);
    const download = page.waitForEvent('download');
    await page.click('#runs-export');
    const file = await (await download).path();
    const csv = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(csv.length, 1 + records.filter((r) => r.params.strategy === 'full').length);
    assert.match(csv[0], /^name,stage,state,/);
    for (const r of records.filter((x) => x.params.strategy === 'full'))
      assert.ok(
        csv.some((l) => l.startsWith(`${r.name},${r.stage},${r.state},`)),
        r.name,
      );
    // parallel coordinates over the shown runs
    const view = await page.evaluate(() => {
      const v = window.tlab.views.get('parallel');
      return v.data('points').map((d) => d.run);
    });
    assert.deepEqual(
      [...new Set(view)].sort(),
      records
        .filter((r) => r.params.strategy === 'full')
        .map((r) => r.name)
        .sort(),
    );
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('Transfer: the table and heatmap equal transfer.json; hover shows CI and n; a click leads to a wrong answer and its raw image', async () => {
    const transfer = readJson<TransferResult>(join(study.dir, 'transfer.json'));
    for (const metric of ['score', 'delta_vs_base', 'relative_gain', 'transfer_index'] as const) {
      await page.goto(`${dash.url}#/transfer?metric=${metric}`);
      await waitView(page, 'transfer');
      for (const c of transfer.cells) {
        const td = page.locator(`#transfer-table td[data-model="${c.model}"][data-task="${c.task}"]`);
        const s = c[metric];
        if (c.status !== 'done') assert.equal(await td.textContent(), c.status);
        else if (s.value !== null) {
          assert.equal(
            Number(await td.getAttribute('data-value')),
            s.value,
            `${metric} ${c.model} ${c.task}`,
          );
          const text = await td.textContent();
          assert.ok(text?.startsWith(fmt(s.value)) && text.includes(`n=${c.n}`), text ?? '');
          if (s.low !== null) assert.ok(text?.includes(`[${fmt(s.low)}, ${fmt(s.high)}]`), text ?? '');
        }
      }
      const drawn = await page.evaluate(() => {
        return window.tlab.views.get('transfer').data('points');
      });
      for (const d of drawn as { row: string; col: string; value: number | null }[]) {
        const c = transfer.cells.find((x) => x.model === d.row && x.task === d.col)!;
        assert.equal(d.value, c.status === 'done' ? c[metric].value : null);
      }
    }
    await page.goto(`${dash.url}#/transfer`);
    await waitView(page, 'transfer');
    const cell = page.locator('#transfer-heatmap path[aria-label="cell vlm-shapes shapes"]');
    await cell.hover({ position: { x: 6, y: 6 } }); // a corner: the value text covers the centre
    const tip = page.locator('#vg-tooltip-element');
    await tip.waitFor({ state: 'visible' });
    const c = transfer.cells.find((x) => x.model === 'vlm-shapes' && x.task === 'shapes')!;
    const tipText = (await tip.textContent()) ?? '';
    assert.ok(
      tipText.includes('95% CI') && tipText.includes(`[${fmt(c.score.low)}, ${fmt(c.score.high)}]`),
      tipText,
    );
    assert.match(tipText, new RegExp(`n${c.n}`));
    await shot(page, 'transfer-hover');
    await cell.click({ position: { x: 6, y: 6 } });
    await waitView(page, 'samples');
    assert.match(page.url(), /#\/samples\?model=vlm-shapes&task=shapes/);
    const rows = logRows(study.dir, 'vlm-shapes', 'shapes');
    assert.equal(await page.locator('#samples-table tbody tr').count(), rows.length);
    await page.check('#samples-wrong');
    const wrong = rows.filter((r) => r.score < 1);
    assert.equal(await page.locator('#samples-table tbody tr').count(), wrong.length);
    for (const r of wrong.slice(0, 5)) {
      const tr = page.locator(`#samples-table tr[data-uid="${r.uid}"]`);
      assert.equal(await tr.locator('td[data-key="prediction"]').textContent(), JSON.stringify(r.prediction));
      assert.equal(Number(await tr.getAttribute('data-score')), r.score);
    }
    await shot(page, 'samples-wrong');
    const first = wrong[0];
    await page.click(`#samples-table tr[data-uid="${first.uid}"] a.uid`);
    await waitView(page, 'sample');
    const img = page.locator('.detail-images img');
    await img.first().waitFor();
    assert.ok(
      await img
        .first()
        .evaluate(
          (el) =>
            (el as unknown as { complete: boolean }).complete &&
            (el as unknown as { naturalWidth: number }).naturalWidth > 0,
        ),
      'the raw image loaded',
    );
    const src = (await img.first().getAttribute('src')) ?? '';
    assert.equal(decodeURIComponent(src), `/files/formatted_datasets/shapes/${first.images[0]}`);
    const served = await (await page.request.get(`${dash.url.replace(/\/$/, '')}${src}`)).body();
    assert.deepEqual(
      served,
      readFileSync(join(study.dir, 'formatted_datasets', 'shapes', first.images[0])),
      'the bytes of the task image',
    );
    // every model that answered this uid, side by side, as their grader logs say
    for (const m of grid.cells
      .filter((x) => x.task === 'shapes' && x.status === 'done')
      .map((x) => x.model)) {
      const r = logRows(study.dir, m, 'shapes').find((x) => x.uid === first.uid)!;
      const card = page.locator(`#sample-answers .answer[data-model="${m}"]`);
      assert.equal(
        await card.locator('pre').textContent(),
        r.prediction === '' ? '(empty answer)' : r.prediction,
      );
      assert.equal(Number(await card.getAttribute('data-score')), r.score);
    }
    assert.equal(await page.textContent('#sample-reference'), String(first.reference));
    await shot(page, 'sample-detail');
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('Curves: the smoothing slider changes the drawn curve; smoothed values are the weighted means', async () => {
    await page.goto(`${dash.url}#/curves?smoothing=0.6`);
    await waitView(page, 'curves');
    const chart = '.chart[data-tag="train/loss"]';
    const pathOf = (layer: number) =>
      page.locator(`${chart} .layer_${layer}_marks path[aria-label*="series: ft-grid1"]`).getAttribute('d');
    // layer 0: the smoothed line; layer 1 (only while smoothing is on): the raw values
    const raw = await pathOf(1);
    const smooth06 = await pathOf(0);
    assert.ok(raw && smooth06 && raw !== smooth06, 'raw and smoothed lines differ');
    const setSmoothing = (v: number) =>
      page.evaluate((x) => {
        const el = document.getElementById('smoothing') as PageElement;
        el.value = String(x);
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }, v);
    await setSmoothing(0.95);
    await page.waitForFunction(([sel, before]) => document.querySelector(sel)?.getAttribute('d') !== before, [
      `${chart} .layer_0_marks path[aria-label*="series: ft-grid1"]`,
      smooth06,
    ] as const);
    const smooth095 = await pathOf(0);
    assert.notEqual(smooth095, smooth06);
    assert.equal(await pathOf(1), raw, 'the raw line stays');
    assert.equal(await page.textContent('#smoothing-value'), '0.950');
    const log = readFileSync(join(study.dir, 'finetune_logs', 'ft-grid1', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { split: string; step: number; loss: number })
      .filter((r) => r.split === 'train');
    const drawn = (await page.evaluate(() => {
      return window.tlab.views.get('curve:train/loss').data('points');
    })) as { series: string; step: number; y: number; smoothed: number }[];
    const mine = drawn.filter((d) => d.series === 'ft-grid1');
    assert.equal(mine.length, log.length);
    mine.forEach((d, k) => {
      let num = 0;
      let den = 0;
      for (let i = 0; i <= k; i++) {
        num += 0.95 ** (k - i) * log[i].loss;
        den += 0.95 ** (k - i);
      }
      assert.equal(d.y, log[k].loss);
      assert.ok(Math.abs(d.smoothed - num / den) < 1e-9, `step ${d.step}: ${d.smoothed} vs ${num / den}`);
    });
    await shot(page, 'curves-smoothing-0.95');
    await setSmoothing(0);
    await page.waitForFunction(
      (sel) => document.querySelectorAll(sel).length === 0,
      `${chart} .layer_1_marks`,
    );
    assert.equal(await pathOf(0), raw, 'smoothing 0 draws the raw values');
    // log axis and wall-time x
    await page.check('#curves-logy');
    await page.selectOption('#curves-x', 'wall');
    await page.waitForFunction(() => location.hash.includes('x=wall') && location.hash.includes('logy=1'));
    await page.waitForFunction(() => {
      const v = window.tlab.views.get('curve:train/loss');
      return (
        v && v.scale('y').type === 'log' && v.data('points').every((d) => d.x !== d.step || d.step === 0)
      );
    });
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('Estimators: τ and CI from summary.json, scores the mean of the metrics result files, accuracies from the grid', async () => {
    const summary = readJson<ExperimentSummary>(join(study.dir, 'summary.json'));
    for (const task of ['grid1', 'grid2']) {
      await page.goto(`${dash.url}#/estimators?task=${task}`);
      await waitView(page, 'estimators');
      for (const metric of ['logme', 'hscore']) {
        const s = summaryEstimators(summary).find((x) => x.task === task && x.metric === metric)!;
        const row = page.locator(`#estimators-table tr[data-metric="${metric}"]`);
        assert.equal(
          Number(await row.locator('td[data-key="tau"]').getAttribute('data-value')),
          s.kendall_tau.value,
        );
        assert.equal(
          await row.locator('td[data-key="ci"]').textContent(),
          `[${fmt(s.kendall_tau.low)}, ${fmt(s.kendall_tau.high)}]`,
        );
        for (const model of ['base', 'ft-grid1', 'ft-grid2']) {
          const dir = join(study.dir, 'metrics', 'results', model, task, metric);
          const scores = readdirSync(dir)
            .filter((f) => f.startsWith(`n${s.n_samples}_`))
            .map((f) => readJson<{ score: number }>(join(dir, f)).score);
          const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
          const tr = page.locator(`#estimator-points tr[data-metric="${metric}"][data-model="${model}"]`);
          assert.ok(
            Math.abs(Number(await tr.locator('td[data-key="score"]').getAttribute('data-value')) - mean) <
              1e-12,
          );
          // the accuracy it predicts: the model fine-tuned from it on the task, else its own score
          const tuned = grid.models.find((m) => m.base === model && m.train_task === task)?.name ?? model;
          const cell = grid.cells.find((c) => c.model === tuned && c.task === task)!;
          assert.equal(
            Number(await tr.locator('td[data-key="actual"]').getAttribute('data-value')),
            cell.score,
          );
        }
      }
      await shot(page, `estimators-${task}`);
    }
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('Geometry: the drawn ID and overlap per layer equal geometry/*.json', async () => {
    await page.goto(`${dash.url}#/geometry`);
    await waitView(page, 'geometry');
    const ids = (await page.evaluate(() => {
      return window.tlab.views.get('geometry:id').data('points');
    })) as { series: string; x: number; y: number }[];
    for (const cond of ['base', 'ft-grid1']) {
      const profile = readJson<{ layers: { layer: number; id: number }[] }>(
        join(study.dir, 'geometry', `profile_${cond}.json`),
      );
      assert.deepEqual(
        ids.filter((d) => d.series === cond).map((d) => [d.x, d.y]),
        profile.layers.map((l) => [l.layer, l.id]),
      );
    }
    const overlap = readJson<{ layers: { layer: number; value: number }[] }[]>(
      join(study.dir, 'geometry', 'overlap.json'),
    );
    const drawn = (await page.evaluate(() => {
      return window.tlab.views.get('geometry:overlap').data('points');
    })) as { x: number; y: number }[];
    assert.deepEqual(
      drawn.map((d) => [d.x, d.y]),
      overlap[0].layers.map((l) => [l.layer, l.value]),
    );
    assert.equal(await page.locator('.chart[data-chart="cka:base/ft-grid1"] svg').count(), 1);
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('a bookmark added in the page is listed by tlab bookmark list; next/previous walk the bookmarks', async () => {
    const rows = logRows(study.dir, 'vlm-base', 'shapes');
    const [a, b] = [rows[0].uid, rows[3].uid];
    await page.goto(`${dash.url}#/sample?task=shapes&uid=${a}`);
    await waitView(page, 'sample');
    await page.fill('#bookmark-note', 'empty answer on a hexagon');
    await page.click('#bookmark-toggle');
    await page.waitForFunction(
      () => document.getElementById('bookmark-toggle')?.textContent === 'remove bookmark',
    );
    await page.goto(`${dash.url}#/sample?task=shapes&uid=${b}`);
    await waitView(page, 'sample');
    await page.click('#bookmark-toggle');
    await page.waitForFunction(() =>
      document.getElementById('bookmark-status')?.textContent?.startsWith('bookmarked (2 of 2)'),
    );
    const list = spawnSync(
      process.execPath,
      ['bin/tlab.js', 'bookmark', 'list', '--root', join(study.dir, 'formatted_datasets')],
      { encoding: 'utf8' },
    );
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual(
      list.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
      [
        { task: 'shapes', uid: a, note: 'empty answer on a hexagon' },
        { task: 'shapes', uid: b },
      ],
    );
    await page.click('#bookmark-next');
    await page.waitForFunction((uid) => location.hash.includes(`uid=${uid}`), a);
    await waitView(page, 'sample');
    assert.equal(await page.inputValue('#bookmark-note'), 'empty answer on a hexagon');
    await page.click('#bookmark-prev');
    await page.waitForFunction((uid) => location.hash.includes(`uid=${uid}`), b);
    await waitView(page, 'sample');
    await shot(page, 'sample-bookmarked');
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('live updates: a run record that changes shows in the open Runs view without a reload', async () => {
    await page.goto(`${dash.url}#/runs`);
    await waitView(page, 'runs');
    const cellOf = () =>
      page.locator(`#runs-table tr[data-run="${study.runningRunId}"] td[data-key="state"]`);
    assert.equal(await cellOf().textContent(), 'running');
    const updates = await page.evaluate(() => {
      return window.tlab.updates();
    });
    const file = join(study.dir, 'runs', study.runningRunId, 'run.json');
    const r = readJson<RunRecord>(file);
    writeFileSync(
      file,
      JSON.stringify({ ...r, state: 'done', seconds: 12.5, finished_at: new Date().toISOString() }),
    );
    await page.waitForFunction(
      ([id, n]) => {
        return (
          window.tlab.updates() > n &&
          document.querySelector(`#runs-table tr[data-run="${id}"] td[data-key="state"]`)?.textContent ===
            'done'
        );
      },
      [study.runningRunId, updates] as const,
      { timeout: 20000 },
    );
    assert.equal(
      await page
        .locator(`#runs-table tr[data-run="${study.runningRunId}"] td[data-key="seconds"]`)
        .textContent(),
      '12.5',
    );
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('Playground: tlab serve streams the greedy answer of the eval grid; the ONNX export in the browser gives it too; both are logged', async () => {
    const row = logRows(study.dir, 'ft-grid1', 'grid1').find((r) => r.prediction !== '');
    assert.ok(row, 'ft-grid1 answers something on grid1');
    const example = readFileSync(join(study.dir, 'formatted_datasets', 'grid1', 'test.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            uid: string;
            messages: { role: string; content: { type: string; text?: string }[] }[];
          },
      )
      .find((e) => e.uid === row.uid)!;
    const prompt = example.messages[0].content.map((p) => p.text ?? '').join('\n');
    await page.goto(`${dash.url}#/playground`);
    await waitView(page, 'playground');
    assert.match((await page.textContent('#pg-mode')) ?? '', /mode: tlab serve at http:\/\/127\.0\.0\.1:\d+/);
    await page.selectOption('#pg-model', 'ft-grid1');
    await page.fill('#pg-prompt', prompt);
    await page.fill('#pg-max-tokens', '4');
    const sse = page.waitForResponse((r) => r.url().endsWith('/api/playground/chat'));
    await page.click('#pg-send');
    assert.equal((await sse).headers()['content-type'], 'text/event-stream');
    await page.waitForSelector('#view[data-exchange="done"]', { timeout: 60000 });
    assert.equal(await page.textContent('#pg-output'), row.prediction, 'the grid’s greedy answer, streamed');
    assert.match(
      (await page.textContent('#pg-status')) ?? '',
      /answered by ft-grid1 through tlab serve: finish \w+, [1-9]\d* chunks streamed/,
    );
    await shot(page, 'playground-serve');

    // a VLM with an attached image answers as it did in the grid
    const vrow = logRows(study.dir, 'vlm-shapes', 'shapes')[0];
    await page.selectOption('#pg-model', 'vlm-shapes');
    await page.fill('#pg-prompt', 'Which shape?');
    await page.setInputFiles('#pg-images', join(study.dir, 'formatted_datasets', 'shapes', vrow.images[0]));
    await page.click('#pg-send');
    await page.waitForSelector('#view[data-exchange="done"]', { timeout: 60000 });
    assert.equal(await page.textContent('#pg-output'), vrow.prediction);

    // the ONNX export, run by onnxruntime-web in this page
    await page.selectOption('#pg-mode-select', 'onnx');
    assert.match(
      (await page.textContent('#pg-mode')) ?? '',
      /in this browser — onnxruntime-web \(WebAssembly\)/,
    );
    await page.selectOption('#pg-model', 'exports/ft-grid1');
    await page.fill('#pg-prompt', prompt);
    await page.click('#pg-send');
    await page.waitForSelector('#view[data-exchange="done"]', { timeout: 120000 });
    assert.match(
      (await page.textContent('#pg-status')) ?? '',
      /ran in this browser \(onnxruntime-web 1\.30\.0 \(wasm\)\)/,
    );
    assert.equal(
      await page.textContent('#pg-output'),
      row.prediction,
      'greedy in the browser = greedy in the grid',
    );
    await shot(page, 'playground-onnx');

    const log = readFileSync(join(study.dir, 'playground', 'exchanges.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(log.length, 3);
    assert.deepEqual(
      log.map((e) => [e.mode, e.model, e.answer]),
      [
        ['serve', 'ft-grid1', row.prediction],
        ['serve', 'vlm-shapes', vrow.prediction],
        ['onnx-browser', 'exports/ft-grid1', row.prediction],
      ],
    );
    assert.equal(log[0].settings.max_tokens, 4);
    assert.equal(log[0].settings.temperature, 0);
    const image = log[1].messages[0].content[0];
    assert.equal(image.type, 'image');
    assert.match(image.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(browser.consoleErrors, []);
  });
});
