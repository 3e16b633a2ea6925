// Sweep results are keyed by content (issue 9 #7): a changed option or feature file is scored again, names map
// to distinct folders, and accuracy tables go through the CSV parser with clear errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLabelFile, readMatrixFile } from '../../src/metrics/features.ts';
import { writeNpy } from '../../src/metrics/io/npy.ts';
import { scoreMetric } from '../../src/metrics/registry.ts';
import {
  loadSweepConfig,
  pathSegment,
  readAccuracyTable,
  runSweep,
  summarizeSweep,
} from '../../src/metrics/sweep.ts';
import { Rng } from '../../src/util/random.ts';

function features(dir: string, name: string, seed: number, n = 40, d = 5): { file: string; labels: string } {
  const rng = new Rng(seed);
  const y = Array.from({ length: n }, (_, i) => i % 3);
  const f = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) f[i * d + j] = rng.normal() + (j === 0 ? y[i] : 0);
  const file = join(dir, `${name}_f.npy`);
  const labels = join(dir, `${name}_y.npy`);
  writeNpy(file, [n, d], f);
  writeNpy(labels, [n], BigInt64Array.from(y.map(BigInt)));
  return { file, labels };
}

test('sweep: results are reused only when estimator, options and feature contents are unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-sweepkey-'));
  try {
    const a = features(dir, 'a', 1);
    const write = (k: number) =>
      writeFileSync(
        join(dir, 'sweep.json'),
        JSON.stringify({
          entries: [{ model: 'm', task: 't', features: a.file, labels: a.labels }],
          metrics: [{ name: 'knn', id: 'knn', options: { k } }],
        }),
      );
    const run = async () => {
      const { config, baseDir } = loadSweepConfig(join(dir, 'sweep.json'));
      return (await runSweep(config, baseDir, { out: join(dir, 'out'), quiet: true }))[0];
    };
    write(1);
    const first = await run();
    const file = join(dir, 'out', 'results', 'm', 't', 'knn', 'n40_seed0.json');
    const mtime = statSync(file).mtimeMs;
    assert.equal((await run()).score, first.score);
    assert.equal(statSync(file).mtimeMs, mtime, 'same config: reused');

    write(7); // same id, other options
    const k7 = await run();
    const expected7 = await scoreMetric(
      'knn',
      { features: await readF(a.file), labels: await readY(a.labels) },
      { k: 7 },
    );
    assert.equal(k7.score, expected7, 'k=7 scored again, not the stored k=1 result');
    assert.notEqual(k7.key, first.key);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).options.k, 7);

    features(dir, 'a', 99); // new contents under the same file names
    const changed = await run();
    assert.notEqual(changed.key, k7.key, 'the key follows the feature values');
    const expectedNew = await scoreMetric(
      'knn',
      { features: await readF(a.file), labels: await readY(a.labels) },
      { k: 7 },
    );
    assert.equal(changed.score, expectedNew);

    writeFileSync(file, '{"truncated":'); // a damaged result is computed again, not a crash
    assert.equal((await run()).score, expectedNew);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const readF = (path: string) => readMatrixFile(path);
const readY = async (path: string) => (await readLabelFile(path)).labels;

test('sweep: model names a/b and a_b get their own result folders', async () => {
  assert.equal(pathSegment('a_b'), 'a_b');
  assert.equal(pathSegment('a/b'), 'a%2Fb');
  assert.equal(pathSegment('a%2Fb'), 'a%252Fb');
  assert.equal(pathSegment('..'), '%2E%2E');
  assert.equal(pathSegment('org/model (v2)'), 'org%2Fmodel%20%28v2%29');
  const dir = mkdtempSync(join(tmpdir(), 'tlab-sweepname-'));
  try {
    const one = features(dir, 'one', 1);
    const two = features(dir, 'two', 2);
    writeFileSync(
      join(dir, 'sweep.json'),
      JSON.stringify({
        entries: [
          { model: 'a/b', task: 't', features: one.file, labels: one.labels },
          { model: 'a_b', task: 't', features: two.file, labels: two.labels },
        ],
        metrics: ['logme'],
      }),
    );
    const { config, baseDir } = loadSweepConfig(join(dir, 'sweep.json'));
    const out = join(dir, 'out');
    const first = await runSweep(config, baseDir, { out, quiet: true });
    assert.notEqual(first[0].score, first[1].score);
    const again = await runSweep(config, baseDir, { out, quiet: true });
    assert.deepEqual(
      again.map((r) => [r.model, r.score]),
      first.map((r) => [r.model, r.score]),
      'each model reads back its own result',
    );
    for (const m of ['a%2Fb', 'a_b'])
      assert.ok(statSync(join(out, 'results', m, 't', 'logme', 'n40_seed0.json')).isFile(), m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('accuracy tables: quoted CSV fields, a byte-order mark, and clear errors for empty or malformed tables', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-acc-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  try {
    assert.deepEqual(
      readAccuracyTable(file('ok.csv', '\uFEFFmodel,task,accuracy\r\n"org/m, v2",t,0.5\r\nm2,t,0.75\r\n')),
      [
        { model: 'org/m, v2', task: 't', accuracy: 0.5 },
        { model: 'm2', task: 't', accuracy: 0.75 },
      ],
    );
    assert.deepEqual(readAccuracyTable(file('ok.json', '[{"model":"m","task":"t","accuracy":0.25}]')), [
      { model: 'm', task: 't', accuracy: 0.25 },
    ]);
    const cases: [string, string, RegExp][] = [
      ['empty.csv', '', /empty\.csv: the accuracy table has no rows$/],
      ['header.csv', 'model,task,accuracy\n', /header\.csv: the accuracy table has no rows$/],
      ['cols.csv', 'model,acc\nm,1\n', /cols\.csv: the header lacks 'task', 'accuracy'$/],
      [
        'nan.csv',
        'model,task,accuracy\nm,t,high\n',
        /nan\.csv: row 1 needs a model, a task and a numeric accuracy/,
      ],
      ['blank.csv', 'model,task,accuracy\nm,t,\n', /blank\.csv: row 1 needs/],
      ['fields.csv', 'model,task,accuracy\nm,t\n', /fields\.csv: row 1 has 2 fields, the header has 3$/],
      [
        'quote.csv',
        'model,task,accuracy\n"m,t,1\n',
        /quote\.csv: line 2: a quoted field opened on this line is never closed/,
      ],
      [
        'twice.csv',
        'model,task,accuracy\nm,t,1\nm,t,2\n',
        /twice\.csv: row 2: model 'm' on task 't' appears twice/,
      ],
      ['bad.json', '[{"model": "m",', /bad\.json: not valid JSON \(/],
      ['obj.json', '{"model": "m"}', /obj\.json: expected a JSON array/],
      ['none.json', '[]', /none\.json: the accuracy table has no rows$/],
    ];
    for (const [name, text, want] of cases)
      assert.throws(
        () => readAccuracyTable(file(name, text)),
        (e: Error) => {
          assert.equal(e.name, 'TlabError', name);
          assert.match(e.message, want, name);
          return true;
        },
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sweep: n_samples 'all' is scored once, with the first seed; subsamples once per seed", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-sweepall-'));
  try {
    const a = features(dir, 'a', 1);
    writeFileSync(
      join(dir, 'sweep.json'),
      JSON.stringify({
        entries: [{ model: 'm', task: 't', features: a.file, labels: a.labels }],
        metrics: ['logme'],
        // 100 >= N = 40 is the same cell as 'all'.
        n_samples: [20, 'all', 100],
        seeds: [3, 5, 7],
      }),
    );
    const { config, baseDir } = loadSweepConfig(join(dir, 'sweep.json'));
    const out = join(dir, 'out');
    const results = await runSweep(config, baseDir, { out, quiet: true });
    assert.deepEqual(
      results.map((r) => [r.n_samples, r.seed, r.all_rows]),
      [
        [20, 3, false],
        [20, 5, false],
        [20, 7, false],
        [40, 3, true],
      ],
    );
    const base = join(out, 'results', 'm', 't', 'logme');
    assert.ok(existsSync(join(base, 'n40_seed3.json')));
    assert.ok(!existsSync(join(base, 'n40_seed5.json')), 'no second copy of the full-sample cell');
    const summary = await summarizeSweep(results, undefined, out);
    const all = summary.scores.find((s) => s.n_samples === 40);
    assert.deepEqual([all?.seeds, all?.std], [1, 0]);
    assert.equal(summary.scores.find((s) => s.n_samples === 20)?.seeds, 3);

    const cli = spawnSync(
      process.execPath,
      ['bin/tlab.js', 'metrics', 'sweep', join(dir, 'sweep.json'), '--out', out],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /^4 results, /);
    assert.match(cli.stdout, /\(all\) scored once, with seed 3 \(the first\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sweep config: an unknown key lists the valid ones; an unknown estimator option fails before scoring', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-sweepcfg-'));
  try {
    const write = (doc: Record<string, unknown>) => {
      writeFileSync(join(dir, 'sweep.json'), JSON.stringify(doc));
      return join(dir, 'sweep.json');
    };
    const entries = [
      { model: 'm', task: 't', features: join(dir, 'missing.npy'), labels: join(dir, 'y.npy') },
    ];
    assert.throws(
      () => loadSweepConfig(write({ entries, metrics: ['logme'], seed: [1] })),
      (e: Error & { details?: string }) => {
        assert.match(
          e.message,
          /sweep\.json: \(top level\): unknown field 'seed' \(did you mean 'seeds'\?\)$/,
        );
        assert.equal(e.details, 'valid fields: entries, metrics, n_samples, seeds, accuracy, tie_tolerance');
        return true;
      },
    );
    // The feature file does not exist: the option error must come first.
    const { config, baseDir } = loadSweepConfig(
      write({ entries, metrics: [{ name: 'knn', options: { kk: 3 } }] }),
    );
    await assert.rejects(
      runSweep(config, baseDir, { out: join(dir, 'out'), quiet: true }),
      (e: Error & { details?: string }) => {
        assert.equal(
          e.message,
          "sweep config: metrics.0.options: unknown option 'kk' (did you mean 'k'?) of knn",
        );
        assert.equal(e.details, 'valid options: k');
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
