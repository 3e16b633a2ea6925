/**
 * The eval grid end to end on a small real study (test/eval/study-fixture.ts): every model on every task, the
 * in-task fine-tuned models above the base, the VLM's image task zero-shot and after fine-tuning, text-only models
 * skipped on the image task with the reason; reruns reuse cells, a changed input redoes exactly its cells; the
 * same grid through `tlab serve` gives the same scores; SIGKILL mid-cell and a rerun lose and repeat nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { resolveGridConfig } from '../../src/eval/grid/config.ts';
import { runEvalGrid } from '../../src/eval/grid/run.ts';
import type { EvalGrid, GridCell } from '../../src/eval/grid/schema.ts';
import { readLogRows } from '../../src/eval/grid/store.ts';
import { startServer } from '../../src/eval/serve/server.ts';
import { buildStudy, gridYaml, type Study, tlab } from './study-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-grid-'));
let study: Study;
let grid: EvalGrid;

const cellOf = (g: EvalGrid, model: string, task: string): GridCell => {
  const c = g.cells.find((x) => x.model === model && x.task === task);
  assert.ok(c, `cell ${model} × ${task}`);
  return c;
};
const score = (g: EvalGrid, model: string, task: string): number => {
  const c = cellOf(g, model, task);
  assert.equal(c.status, 'done', `${model} × ${task}: ${c.error ?? c.reason}`);
  return c.score!;
};

function config(out: string, extra: { serverUrl?: string; batchSize?: number } = {}) {
  const file = join(root, `${out}.yaml`);
  writeFileSync(file, gridYaml(study, join(root, out), extra));
  return { file, config: resolveGridConfig(YAML.parse(readFileSync(file, 'utf8')), file) };
}

before(() => {
  study = buildStudy(join(root, 'study'));
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('eval grid', () => {
  test('every model on every task: in-task fine-tuning beats the base, the VLM reads its images', async () => {
    const { config: c } = config('local');
    const cells: GridCell[] = [];
    grid = await runEvalGrid(c, { quiet: true, onCell: (cell) => cells.push(cell) });
    assert.equal(cells.length, 15, 'five models × three tasks');
    for (const task of ['grid1', 'grid2']) {
      const tuned = score(grid, `ft-${task}`, task);
      const base = score(grid, 'base', task);
      assert.ok(tuned > base + 0.2, `ft-${task} on ${task}: ${tuned} vs base ${base}`);
    }
    const zeroShot = score(grid, 'vlm-base', 'shapes');
    const tuned = score(grid, 'vlm-shapes', 'shapes');
    assert.ok(
      tuned >= 0.6 && tuned > zeroShot + 0.3,
      `VLM on its image task: ${tuned} after vs ${zeroShot} before`,
    );
    for (const m of ['base', 'ft-grid1', 'ft-grid2']) {
      const c = cellOf(grid, m, 'shapes');
      assert.equal(c.status, 'skipped');
      assert.match(c.reason!, /images and '.*' is a text-only model/);
    }
    // Logs: one row per sample, the VLM's rows name their images; failures list exactly the wrong answers.
    const cell = cellOf(grid, 'vlm-base', 'shapes');
    const rows = readLogRows(join(c.out, cell.log!));
    assert.equal(rows.length, 30);
    assert.ok(rows.every((r) => r.images.length === 1 && r.images[0].startsWith('images/')));
    assert.equal(
      rows.filter((r) => r.score === 1).length / rows.length,
      cell.score,
      'the topline is the mean of the logged scores',
    );
    const failures = readFileSync(join(c.out, 'failures', 'vlm-base', 'shapes.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(failures.length, rows.filter((r) => r.score < 1).length);
    assert.ok(failures.every((f) => existsSync(f.images[0]) && f.task_dir === study.tasks.shapes));
    // Every model saw the same samples of a task.
    const uids = (m: string) => readLogRows(join(c.out, cellOf(grid, m, 'grid1').log!)).map((r) => r.uid);
    assert.deepEqual(uids('base'), uids('ft-grid2'));
    // The cookbook's list form: done cells with their topline, no skipped ones.
    const list = JSON.parse(readFileSync(join(c.out, 'eval_grid_results.json'), 'utf8'));
    assert.equal(list.length, 12);
    assert.ok(list.every((r: { topline_metric: string }) => r.topline_metric === 'exact_match'));
    for (const d of grid.cells.filter((x) => x.status === 'done')) {
      assert.ok(d.ci && d.ci.low <= d.score! && d.score! <= d.ci.high, `${d.model} × ${d.task} CI`);
    }
  });

  test('tlab eval transfer: the 3×2 matrix of the text models, the relative-gain index and CIs', () => {
    const out = join(root, 'local');
    const r = tlab(['eval', 'transfer', out, '--resamples', '200', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(readFileSync(join(out, 'transfer.json'), 'utf8'));
    const cell = (m: string, t: string) =>
      result.cells.find((c: { model: string; task: string }) => c.model === m && c.task === t);
    for (const m of ['base', 'ft-grid1', 'ft-grid2'])
      for (const t of ['grid1', 'grid2']) {
        const c = cell(m, t);
        assert.equal(c.status, 'done', `${m} × ${t}`);
        assert.equal(c.score.value, score(grid, m, t));
        assert.ok(c.score.low <= c.score.value && c.score.value <= c.score.high, `${m} × ${t} CI`);
      }
    for (const [m, own, other] of [
      ['ft-grid1', 'grid1', 'grid2'],
      ['ft-grid2', 'grid2', 'grid1'],
    ] as const) {
      const c = cell(m, own);
      assert.ok(c.delta_vs_base.value > 0 && c.delta_vs_base.low > 0, `${m} beats the base on ${own}`);
      assert.equal(cell(m, own).transfer_index.value, 1, 'index(i→i) = 1');
      const index = cell(m, other).transfer_index;
      const g = (t: string) => score(grid, m, t) / Math.max(score(grid, 'base', t), 0.01) - 1;
      assert.ok(Math.abs(index.value - g(other) / g(own)) < 1e-12, `${m}: index = g(${other}) / g(${own})`);
      assert.ok(index.low !== null && index.high !== null, `${m}: index CI`);
    }
    const csv = readFileSync(join(out, 'transferability_results.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 1 + result.cells.length);
    assert.ok(existsSync(join(out, 'transfer_heatmap.svg')));
  });

  test('a rerun reuses every cell; a changed input redoes exactly the cells it affects', async () => {
    const { file, config: c } = config('local');
    const again: GridCell[] = [];
    const second = await runEvalGrid(c, { quiet: true, onCell: (cell) => again.push(cell) });
    assert.equal(again.length, 0, 'nothing to redo');
    assert.deepEqual(second.cells, grid.cells);
    // Another grader option for one task: its five cells only.
    const doc = YAML.parse(readFileSync(file, 'utf8'));
    doc.tasks.grid2.grader_options = { ignore_case: true };
    const redone: GridCell[] = [];
    await runEvalGrid(resolveGridConfig(doc, file), { quiet: true, onCell: (cell) => redone.push(cell) });
    assert.deepEqual(redone.map((x) => `${x.model}/${x.task}`).sort(), [
      'base/grid2',
      'ft-grid1/grid2',
      'ft-grid2/grid2',
      'vlm-base/grid2',
      'vlm-shapes/grid2',
    ]);
  });

  test('the same grid through tlab serve (OpenAI-compatible backend) gives the same scores', async () => {
    const m = study.models;
    const server = await startServer({
      port: 0,
      models: [
        { dir: m.base, name: 'base' },
        { dir: m.ftGrid1, name: 'ft-grid1' },
        { dir: m.ftGrid2, name: 'ft-grid2' },
        { dir: m.vlmBase, name: 'vlm-base' },
        { dir: m.vlmShapes, name: 'vlm-shapes' },
      ],
    });
    try {
      const { config: c } = config('served', { serverUrl: server.url });
      const served = await runEvalGrid(c, { quiet: true });
      assert.ok(served.models.every((x) => x.backend === 'openai'));
      for (const cell of grid.cells) {
        const other = cellOf(served, cell.model, cell.task);
        assert.equal(other.status, cell.status, `${cell.model} × ${cell.task}`);
        assert.equal(other.score, cell.score, `${cell.model} × ${cell.task}`);
      }
      const predictions = (out: string, g: EvalGrid) =>
        readLogRows(join(root, out, cellOf(g, 'vlm-shapes', 'shapes').log!)).map((r) => r.prediction);
      assert.deepEqual(predictions('served', served), predictions('local', grid));
    } finally {
      await server.close();
    }
  });

  test('SIGKILL in the middle of a cell, then a rerun: nothing lost, nothing done twice, no torn line', async () => {
    const { file } = config('killed', { batchSize: 2 });
    const out = join(root, 'killed');
    const child = spawn(process.execPath, ['bin/tlab.js', 'eval', 'grid', file, '--quiet'], {
      stdio: 'ignore',
    });
    // Kill once a partial log exists and a few cells are done.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const cells = existsSync(join(out, 'cells'))
          ? readdirSync(join(out, 'cells')).flatMap((m) => readdirSync(join(out, 'cells', m)))
          : [];
        const partial = existsSync(join(out, 'grader_logs'))
          ? readdirSync(join(out, 'grader_logs')).some((m) =>
              readdirSync(join(out, 'grader_logs', m)).some((f) => f.endsWith('.partial.jsonl')),
            )
          : false;
        if (cells.length >= 2 && partial) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('the grid finished before it could be killed'));
      });
    });
    await new Promise((r) => child.once('exit', r));
    const before = new Map<string, string>();
    for (const m of readdirSync(join(out, 'cells')))
      for (const f of readdirSync(join(out, 'cells', m)))
        before.set(`${m}/${f}`, JSON.parse(readFileSync(join(out, 'cells', m, f), 'utf8')).finished_at);
    const r = tlab(['eval', 'grid', file, '--quiet', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const resumed = JSON.parse(r.stdout) as EvalGrid;
    assert.equal(resumed.cells.length, 15, 'no cell missing');
    for (const cell of resumed.cells) {
      const earlier = before.get(`${cell.model}/${cell.task}.json`);
      if (earlier) assert.equal(cell.finished_at, earlier, `${cell.model} × ${cell.task} was not redone`);
      assert.equal(cell.score, cellOf(grid, cell.model, cell.task).score, `${cell.model} × ${cell.task}`);
      if (cell.log) {
        const text = readFileSync(join(out, cell.log), 'utf8');
        assert.ok(text.endsWith('\n'));
        assert.equal(readLogRows(join(out, cell.log)).length, cell.n, 'one whole line per sample');
      }
    }
    const partials = readdirSync(join(out, 'grader_logs')).flatMap((m) =>
      readdirSync(join(out, 'grader_logs', m)).filter((f) => f.endsWith('.partial.jsonl')),
    );
    assert.deepEqual(partials, [], 'partial logs are removed once their cell is done');
  });

  test('an error in one cell is recorded there and the grid goes on; the command exits 1', async () => {
    const file = join(root, 'broken.yaml');
    const doc = YAML.parse(gridYaml(study, join(root, 'broken')));
    doc.models.bad = {
      path: study.models.base,
      server: { url: 'http://127.0.0.1:9', model: 'bad', max_retries: 0 },
    };
    writeFileSync(file, YAML.stringify(doc));
    const r = tlab(['eval', 'grid', file, '--quiet', '--task', 'grid1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr.split('\n')[0], /^error: .*broken\.yaml: 1 of 6 cells failed, first bad × grid1/);
    const g = JSON.parse(readFileSync(join(root, 'broken', 'eval_grid.json'), 'utf8')) as EvalGrid;
    assert.equal(cellOf(g, 'bad', 'grid1').status, 'error');
    assert.equal(cellOf(g, 'base', 'grid1').score, cellOf(grid, 'base', 'grid1').score);
  });

  test('bad grid configs give one clear line naming the file and field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { models: [{ path: study.models.base }], tasks: [{ path: study.tasks.grid1 }], nb_evals: 3 },
        /unknown field 'nb_evals'/,
      ],
      [
        { out: 'x', models: [{ path: study.models.base }], tasks: [{ path: join(root, 'nope') }] },
        /tasks\.nope\.path: .* is not a task folder/,
      ],
      [
        {
          out: 'x',
          models: [{ path: study.models.base }],
          tasks: [{ path: study.tasks.grid1, split: 'dev' }],
        },
        /tasks\.grid1\.split: 'dev' is not a split of the task; valid: test, train/,
      ],
      [
        {
          out: 'x',
          models: [{ path: study.models.base, train_task: 'grid9' }],
          tasks: [{ path: study.tasks.grid1 }],
        },
        /models\.base\.train_task: 'grid9' is not a task of this grid/,
      ],
      [
        {
          out: 'x',
          models: [{ path: study.models.base }],
          tasks: [{ path: study.tasks.grid1 }],
          checkpoint_to_eval: -2,
        },
        /checkpoint_to_eval/,
      ],
      [
        { out: 'x', models: [{ path: study.root }], tasks: [{ path: study.tasks.grid1 }] },
        /holds neither config\.json nor checkpoint folders/,
      ],
      [
        { out: 'x', models: [{ name: 'a' }], tasks: [{ path: study.tasks.grid1 }] },
        /models\.a: give path .* or server/,
      ],
      [{ models: [{ path: study.models.base }], tasks: [{ path: study.tasks.grid1 }] }, /out: required/],
      [
        {
          out: 'x',
          models: [{ path: study.models.base }],
          tasks: [{ path: study.tasks.grid1, grader: 'exact_mach' }],
        },
        /exact_mach.*did you mean 'exact_match'/,
      ],
    ];
    for (const [doc, pattern] of cases) {
      const file = join(root, 'bad.yaml');
      writeFileSync(file, YAML.stringify(doc));
      const r = tlab(['eval', 'grid', file, '--quiet']);
      assert.equal(r.status, 1, JSON.stringify(doc));
      const first = r.stderr.split('\n')[0];
      assert.match(first, /^error: .*bad\.yaml/, first);
      assert.match(first, pattern, first);
    }
  });
});
