/**
 * Readable plots (src/report/plot.ts and its helpers): the auto log/linear decision, domains fitted to the data
 * (checked on the spec and on the rendered tick labels), opaque legend swatches, no wide margins, overlapping
 * scatter points spread with stacked labels, and the learning curve's evaluation panel.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chooseScale, fitDomain, LOG_RATIO } from '../../src/report/axis-scale.ts';
import { learningCurveSpec } from '../../src/report/learning-curve.ts';
import { type LinePoint, linePlotSpec, renderSvg, scatterPlotSpec } from '../../src/report/plot.ts';
import { textWidth } from '../../src/report/text-width.ts';
import { plotLearningCurve } from '../../src/train/run-training.ts';

/** A line plot of one series 's' with axes 'x' and 'y'. */
const oneSeries = (points: LinePoint[]) =>
  linePlotSpec({ title: 't', x: { title: 'x' }, y: { title: 'y' }, series: [{ name: 's', points }] });

const root = mkdtempSync(join(tmpdir(), 'tlab-plot-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Layer {
  mark: { dy?: number };
  encoding: Record<string, { field?: string; scale?: { type: string; domain?: number[]; nice?: boolean } }>;
}
const layers = (spec: unknown) => (spec as { layer: Layer[] }).layer;
const scaleOf = (spec: unknown, channel: 'x' | 'y') => layers(spec)[0].encoding[channel].scale!;

/** Text of the SVG's elements in groups of `role`, with whether vega left them visible (overlap removal). */
function texts(svg: string, role: string): { text: string; visible: boolean }[] {
  const out: { text: string; visible: boolean }[] = [];
  for (const g of svg.matchAll(new RegExp(`<g class="mark-text role-${role}"[^>]*>(.*?)</g>`, 'g')))
    for (const t of g[1].matchAll(/<text([^>]*)>([^<]*)<\/text>/g))
      out.push({ text: t[2], visible: !/opacity="0"/.test(t[1]) });
  return out;
}
const size = (svg: string) =>
  svg
    .match(/<svg[^>]* width="([\d.]+)" height="([\d.]+)"/)!
    .slice(1)
    .map(Number);

test('auto scale: log when every value is positive and they span 100x; an explicit scale wins', () => {
  assert.equal(chooseScale(undefined, [3, 300]), 'log');
  assert.equal(chooseScale('auto', [0.001, 0.1, 0.05]), 'log');
  assert.equal(chooseScale(undefined, [3, 299]), 'linear', `under ${LOG_RATIO}x`);
  assert.equal(chooseScale(undefined, [0, 1, 1000]), 'linear', 'zero cannot be drawn on a log axis');
  assert.equal(chooseScale(undefined, [-1, 1000]), 'linear');
  assert.equal(chooseScale(undefined, []), 'linear');
  assert.equal(chooseScale('linear', [1, 1e6]), 'linear');
  assert.equal(chooseScale('log', [2, 3]), 'log');
  // the band counts: y within 1–50 but a band up to 200 spans 200x
  const band = oneSeries([
    { x: 1, y: 1, low: 1, high: 200 },
    { x: 2, y: 50 },
  ]);
  assert.equal(scaleOf(band, 'y').type, 'log');
  assert.equal(scaleOf(band, 'x').type, 'linear');
  const negativeLow = oneSeries([
    { x: 1, y: 1, low: -1, high: 3 },
    { x: 2, y: 500 },
  ]);
  assert.equal(scaleOf(negativeLow, 'y').type, 'linear');
});

test('domains fit the data with a small margin, multiplicative on a log axis; zero is kept when asked', () => {
  const [lo, hi] = fitDomain([300, 1000, 3000], 'log')!;
  assert.ok(lo < 300 && lo > 250 && hi > 3000 && hi < 3600, `${lo}..${hi}`);
  assert.ok(Math.abs(Math.log10(300 / lo) - Math.log10(hi / 3000)) < 1e-12, 'the same margin in log space');
  assert.deepEqual(fitDomain([2, 10], 'linear'), [1.6, 10.4]);
  assert.deepEqual(fitDomain([2, 10], 'linear', true), [0, 10.5]);
  assert.deepEqual(fitDomain([-4, -2], 'linear', true), [-4.2, 0]);
  assert.deepEqual(fitDomain([5, 5], 'linear'), [4.75, 5.25], 'a single value still gets a span');
  assert.deepEqual(fitDomain([0, 0], 'linear'), [-1, 1]);
  assert.equal(fitDomain([Number.NaN], 'linear'), null);
});

test('a log x axis over 300–3000 runs from about 300 to 3,000, not 100 to 10,000', async () => {
  const spec = linePlotSpec({
    title: 'score vs n_samples',
    x: { title: 'n_samples', scale: 'log' },
    y: { title: 'score', zero: true },
    series: [{ name: 'm', points: [300, 1000, 3000].map((x, i) => ({ x, y: 1 + i })) }],
  });
  for (const layer of layers(spec)) {
    const x = layer.encoding.x.scale!;
    assert.equal(x.type, 'log');
    assert.equal(x.nice, false);
    assert.ok(x.domain![0] > 250 && x.domain![1] < 3600, `x domain ${x.domain}`);
  }
  assert.equal(scaleOf(spec, 'y').domain![0], 0, 'zero: true keeps 0 on the linear y axis');
  const labels = texts(await renderSvg(spec), 'axis-label');
  const visible = labels.filter((l) => l.visible).map((l) => l.text);
  for (const want of ['300', '3,000']) assert.ok(visible.includes(want), `${want} in ${visible}`);
  for (const not of ['100', '200', '4,000', '5,000', '10,000'])
    assert.ok(!labels.some((l) => l.text === not), `no ${not} tick`);
});

test('legend swatches are opaque although the band is translucent', async () => {
  const svg = await renderSvg(
    linePlotSpec({
      title: 't',
      x: { title: 'x' },
      y: { title: 'y' },
      series: ['a', 'b'].map((name, j) => ({
        name,
        points: [1, 2, 3].map((x) => ({ x, y: x + j, low: x + j - 0.5, high: x + j + 0.5 })),
      })),
    }),
  );
  assert.match(svg, /opacity="0.18"/, 'the band is drawn translucent');
  const legend = svg.match(/<g class="mark-symbol role-legend-symbol"[^>]*>(.*?)<\/g>/g) ?? [];
  assert.equal(legend.length, 2);
  for (const g of legend) {
    assert.match(g, /opacity="1"/);
    assert.doesNotMatch(g, /opacity="0\.18"/);
  }
});

test('the SVG is the plot plus its axes and title, without wide empty margins', async () => {
  const points = [
    { x: 0.1, y: 0.5, label: 'a' },
    { x: 0.9, y: 0.7, label: 'b' },
  ];
  const plain = { x: { title: 'score' }, y: { title: 'accuracy' }, points, width: 420, height: 320 };
  const [w, h] = size(await renderSvg(scatterPlotSpec({ title: 'short', ...plain })));
  // y labels "0.50" and the axis title take about 45px, the x axis and the title about 55px, padding 10px
  assert.ok(w >= 420 && w - 420 <= 60, `width ${w}`);
  assert.ok(h >= 320 && h - 320 <= 70, `height ${h}`);
  // A title wider than the plot sets the width: no more than the title's rendered width plus padding (vega's
  // own guess of 0.8 em a character made this 874px).
  const title = 'leep vs fine-tuned accuracy (task-a, n=1000): Kendall τ = 0.333, weighted τ = 0.412';
  const [wl] = size(await renderSvg(scatterPlotSpec({ title, ...plain })));
  assert.ok(wl <= Math.ceil(textWidth(title, 13, true)) + 2 * 5 + 2, `width ${wl} for a long title`);
});

test('identical scatter points are spread in x with stacked labels; the data keeps the exact values', async () => {
  const points = [
    { x: 0.5, y: 0.8, label: 'm0' },
    { x: 0.5, y: 0.8, label: 'm1' },
    { x: 0.5, y: 0.8, label: 'm2' },
    { x: 0.9, y: 0.2, label: 'far' },
  ];
  const plot = { title: 'ties', x: { title: 'score' }, y: { title: 'accuracy' }, points };
  const spec = scatterPlotSpec(plot);
  const values = (
    spec as unknown as { data: { values: { x: number; y: number; x_drawn: number; stack: number }[] } }
  ).data.values;
  assert.deepEqual(
    values.map((v) => [v.x, v.y]),
    points.map((p) => [p.x, p.y]),
  );
  assert.deepEqual(
    values.map((v) => v.stack),
    [0, 1, 2, 0],
  );
  const drawn = values.map((v) => v.x_drawn);
  assert.ok(drawn[0] < drawn[1] && drawn[1] < drawn[2], `spread in x: ${drawn}`);
  assert.ok(Math.abs(drawn[1] - 0.5) < 1e-12, 'the middle one stays put');
  assert.ok(Math.abs(drawn[2] - drawn[0]) < 0.05, 'a small spread');
  assert.equal(drawn[3], 0.9, 'a lone point is not moved');
  assert.deepEqual(scatterPlotSpec(plot), spec, 'no randomness');
  const svg = await renderSvg(spec);
  const pos = (label: string) => {
    const m = svg.match(
      new RegExp(`<text[^>]*transform="translate\\(([\\d.-]+),([\\d.-]+)\\)"[^>]*>${label}</text>`),
    );
    assert.ok(m, `label ${label} drawn`);
    return [Number(m[1]), Number(m[2])];
  };
  const [p0, p1, p2] = ['m0', 'm1', 'm2'].map(pos);
  assert.ok(p0[1] - p1[1] >= 10 && p1[1] - p2[1] >= 10, `labels a line apart: ${p0} ${p1} ${p2}`);
  assert.notDeepEqual(p0, p1);
});

test('learning curve: the evaluation metrics in a panel beside the loss', async () => {
  const records = [
    { step: 0, time: 0, split: 'data', train_rows: 10 },
    { step: 0, time: 0, split: 'eval', loss: 3, accuracy: 0.1, exact_match: 0, tokens: 40, rows: 4 },
    ...[10, 20, 30, 40].map((step) => ({ step, time: step, split: 'train', loss: 3 / step, lr: 0.001 })),
    { step: 40, time: 40, split: 'eval', loss: 'NaN', accuracy: 0.7, exact_match: 0.5, tokens: 40, rows: 4 },
  ];
  const spec = learningCurveSpec(records, 'run') as unknown as { hconcat: { title: string }[] };
  assert.deepEqual(
    spec.hconcat.map((p) => p.title),
    ['loss', 'evaluation'],
  );
  const evalPanel = spec.hconcat[1] as unknown as { data: { values: { series: string; y: number }[] } };
  assert.deepEqual(
    evalPanel.data.values.map((v) => [v.series, v.y]),
    [
      ['accuracy', 0.1],
      ['accuracy', 0.7],
      ['exact_match', 0],
      ['exact_match', 0.5],
    ],
  );
  const lossOnly = learningCurveSpec(
    records.filter((r) => r.split !== 'eval'),
    'run',
  ) as unknown as Record<string, unknown>;
  assert.equal(lossOnly.hconcat, undefined, 'one panel when nothing was evaluated');
  assert.equal(learningCurveSpec([records[0]], 'run'), null);

  const dir = join(root, 'logs');
  mkdirSync(dir);
  writeFileSync(join(dir, 'metrics.jsonl'), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  assert.equal(await plotLearningCurve(dir, 'run'), join(dir, 'loss.png'));
  assert.ok(existsSync(join(dir, 'loss.png')));
  const svg = readFileSync(join(dir, 'loss.svg'), 'utf8');
  const legend = texts(svg, 'legend-label').map((t) => t.text);
  for (const name of ['train', 'eval', 'accuracy', 'exact_match']) assert.ok(legend.includes(name), name);
  assert.ok(texts(svg, 'title-text').some((t) => t.text === 'evaluation'));
});
