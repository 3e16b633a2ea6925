/**
 * The report and the dashboard's data routes on a folder that `tlab run` wrote (a tiny text-only study: two zoo
 * GPT-2s, full fine-tuning on two tasks, the grid, two estimators, the summary): every run record, the transfer
 * matrix, summary.json's correlations (its list form, with τ null where it is undefined) and actual scores, and
 * every training log are shown as the files say, with no warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import type { TransferResult } from '../../src/eval/transfer.ts';
import type { EstimatorGroup } from '../../src/report/estimator-points.ts';
import type { ExperimentSummary, RunRecord, SummaryCorrelation } from '../../src/report/experiment-types.ts';
import { writeReport } from '../../src/report/write-report.ts';
import { type DashboardHandle, startDashboard } from '../../src/web/server.ts';
import { gridTask, tinyGpt2 } from '../lab/tiny-study.ts';
import { tlabInProcess } from '../web/study.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-report-lab-'));
const out = join(root, 'exp');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

const task = gridTask;
const zoo = (on: string, n_embd: number) => tinyGpt2(on, n_embd);

describe('report and dashboard on a tlab run experiment', () => {
  let dash: DashboardHandle;
  let runs: RunRecord[];
  let summary: ExperimentSummary;

  before(async () => {
    const file = join(root, 'tiny.yaml');
    writeFileSync(
      file,
      YAML.stringify({
        name: 'tiny',
        out,
        tasks: { g1: task(1, 60), g2: task(2, 30) },
        tokenizers: { shared: { build: 'word', from_tasks: ['g1', 'g2'] } },
        models: { a: zoo('g2', 16), b: zoo('g1', 24) },
        finetuning: { strategies: ['full'], training: { max_steps: 8, batch_size: 16, lr: 0.003 } },
        evals: { nb_eval_samples: 6, inference: { max_tokens: 3 }, bootstrap: 50 },
        metrics: { estimators: ['logme', 'hscore'], n_samples: ['all'], seeds: [0] },
      }),
    );
    await tlabInProcess(['run', file, '--quiet']);
    runs = readdirSync(join(out, 'runs')).map((id) => readJson<RunRecord>(join(out, 'runs', id, 'run.json')));
    summary = readJson<ExperimentSummary>(join(out, 'summary.json'));
    dash = await startDashboard({ dir: out, port: 0 });
  });
  after(async () => {
    await dash?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${dash.url.replace(/\/$/, '')}${path}`);
    assert.equal(r.status, 200, path);
    return (await r.json()) as T;
  };

  test('the report reads every file without a warning and shows the runner’s numbers', async () => {
    const r = await writeReport(out, { quiet: true });
    assert.deepEqual(r.warnings, []);
    const html = readFileSync(r.index, 'utf8');
    for (const run of runs) assert.ok(html.includes(`<td>${run.name}</td>`), run.name);
    const transfer = readJson<TransferResult>(join(out, 'transfer.json'));
    const table = html.slice(
      html.indexOf('data-metric="score"'),
      html.indexOf('</table>', html.indexOf('data-metric="score"')),
    );
    const shown = [...table.matchAll(/data-value="([^"]+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      shown,
      transfer.cells.filter((c) => c.status === 'done').map((c) => c.score.value),
    );
    const trained = runs.filter((x) => x.stage === 'pretrain' || x.stage === 'finetune').length;
    const curve = readFileSync(join(out, 'report', 'charts', 'curve_train_loss.svg'), 'utf8');
    for (const x of runs.filter((y) => y.stage === 'finetune'))
      assert.ok(curve.includes(x.name), `${x.name} in the learning curves`);
    assert.equal(trained, 6);
    assert.match(html, /uninformative: 2 models/);
  });

  test('the dashboard serves the run records, summary correlations and actual scores as written', async () => {
    const got = await api<{ runs: RunRecord[] }>('/api/runs');
    assert.deepEqual(
      got.runs.map((r) => [r.id, r.state, r.stage, r.name]).sort(),
      runs.map((r) => [r.id, r.state, r.stage, r.name]).sort(),
    );
    const { groups } = await api<{ groups: EstimatorGroup[] }>('/api/estimators');
    const correlations = summary.estimators as SummaryCorrelation[];
    assert.equal(groups.length, correlations.length);
    for (const c of correlations) {
      const g = groups.find(
        (x) => x.task === c.task && x.metric === c.metric && x.n_samples === c.n_samples,
      )!;
      assert.deepEqual(g.kendall, {
        value: c.kendall,
        low: c.kendall_ci95[0],
        high: c.kendall_ci95[1],
        source: 'summary.json',
        reliability: c.reliability,
      });
      for (const p of g.points) {
        const a = summary.actual_scores!.find((x) => x.model === p.model && x.task === c.task)!;
        assert.deepEqual(p.actual, { value: a.accuracy, model: p.model, source: 'summary.json' });
        const file = join(out, 'metrics', 'results', p.model, c.task, c.metric, `n${c.n_samples}_seed0.json`);
        assert.equal(p.mean, readJson<{ score: number }>(file).score);
      }
    }
    const curves = await api<{ logs: { runId: string | null }[] }>('/api/curves');
    assert.deepEqual(
      curves.logs.map((l) => l.runId).sort(),
      runs
        .filter((r) => r.stage === 'pretrain' || r.stage === 'finetune')
        .map((r) => r.id)
        .sort(),
    );
    const exp = await api<{ warnings: string[]; name: string }>('/api/experiment');
    assert.deepEqual(exp.warnings, []);
    assert.equal(exp.name, 'tiny');
  });
});
