import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { TlabError } from '../../src/util/errors.ts';
import { tempDir, vqaRows, writeVqaParquet } from './helpers.ts';

const TLAB = join(import.meta.dirname, '../../bin/tlab.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  first: string;
}

/** The real executable (exit status as the shell sees it). */
function tlabProcess(cwd: string, ...args: string[]): Run {
  const r = spawnSync(process.execPath, [TLAB, ...args], { cwd, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, first: r.stderr.split('\n')[0] };
}

/**
 * What the CLI prints for a build (its first stderr line is `error: ` + the TlabError's message), without
 * starting a process per case.
 */
async function buildError(dir: string, out: string): Promise<Run> {
  try {
    await buildTasksFromFile(join(dir, 'config.yaml'), { outDir: out, quiet: true });
    return { status: 0, stdout: '', stderr: '', first: '' };
  } catch (error) {
    assert.ok(error instanceof TlabError, `not a TlabError: ${(error as Error).stack}`);
    const stderr = `error: ${error.message}\n${error.details ?? ''}`;
    return { status: 1, stdout: '', stderr, first: stderr.split('\n')[0] };
  }
}

test('tlab data build: an unknown key, in a task or its generator parameters, lists the valid keys', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const cases: [string, RegExp, RegExp][] = [
      [
        'dataset: synthetic:counting\n    seeed: 1',
        /^error: config\.yaml: tasks\.t: unknown field 'seeed' \(did you mean 'seed'\?\)$/,
        /^valid fields: dataset, revision, subset, generator, mode, splits, .*, few_shot, grader$/m,
      ],
      [
        'dataset: synthetic:counting\n    few_shot: {k: 1, pool: 2}',
        /^error: config\.yaml: tasks\.t\.few_shot: unknown field 'pool'/,
        /^valid fields: k, split, pool_size$/m,
      ],
      [
        'dataset: synthetic:spatial\n    generator: {modalty: text}',
        /^error: config\.yaml: tasks\.t\.generator: unknown field 'modalty' \(did you mean 'modality'\?\)$/,
        /^valid fields: splits, image_size, colors, shapes, min_objects, max_objects, modality, format$/m,
      ],
      [
        'dataset: synthetic:json-extraction\n    generator: {doc_type: [quote]}',
        /^error: config\.yaml: tasks\.t\.generator: unknown field 'doc_type' \(did you mean 'doc_types'\?\)$/,
        /^valid fields: splits, modality, fields, distractors, image_width, doc_types$/m,
      ],
    ];
    for (const [body, first, valid] of cases) {
      writeFileSync(join(dir, 'config.yaml'), `tasks:\n  t:\n    ${body}\n`);
      const r = await buildError(dir, join(dir, 'out'));
      assert.equal(r.status, 1, body);
      assert.match(r.first, first, body);
      assert.match(r.stderr, valid, body);
    }
  } finally {
    cleanup();
  }
});

/** Bad inputs: each fails with a first stderr line naming the file/field/row, exit 1, and no task folder. */
test('tlab data build: clear errors and no half-written task folder', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const rows = await vqaRows(6);
    writeVqaParquet(join(dir, 'good.parquet'), rows);
    const bad = rows.map((r, i) =>
      i === 4 ? { ...r, image: { bytes: new TextEncoder().encode('not a png'), path: 'x.png' } } : r,
    );
    writeVqaParquet(join(dir, 'badimage.parquet'), bad, 2);
    const good = readFileSync(join(dir, 'good.parquet'));
    writeFileSync(join(dir, 'corrupt.parquet'), good.subarray(0, good.length - 30));
    const cases: [string, string, RegExp][] = [
      [
        'missing-column',
        'dataset: good.parquet\n    image_column: picture\n    user_prompt: q',
        /^error: config\.yaml: tasks\.t\.image_column: no column 'picture' in good\.parquet$/,
      ],
      [
        'corrupt',
        'dataset: corrupt.parquet\n    user_prompt: q',
        /^error: corrupt\.parquet: not a readable Parquet file/,
      ],
      [
        'bad-image',
        'dataset: badimage.parquet\n    image_column: image\n    uid_column: id\n    user_prompt: q',
        /^error: badimage\.parquet row 4 \(uid q4\): column 'image': cannot decode image/,
      ],
      [
        'percent',
        'dataset: good.parquet\n    sample_percent: 1.5',
        /^error: config\.yaml: tasks\.t\.sample_percent: must be in \(0, 1\], got 1\.5$/,
      ],
      [
        'generator',
        'dataset: synthetic:mazes',
        /^error: config\.yaml: tasks\.t\.dataset: unknown generator 'synthetic:mazes'$/,
      ],
      [
        'unknown-field',
        'dataset: good.parquet\n    sample_pct: 0.5',
        /^error: config\.yaml: tasks\.t: unknown field 'sample_pct' \(did you mean 'sample_percent'\?\)$/,
      ],
    ];
    for (const [name, body, expected] of cases) {
      const sub = join(dir, name);
      writeFileSync(join(dir, 'config.yaml'), `tasks:\n  t:\n    ${body}\n`);
      const r = await buildError(dir, sub);
      assert.equal(r.status, 1, `${name}: ${r.stderr}`);
      assert.match(r.first, expected, name);
      assert.ok(!existsSync(join(sub, 't')), `${name}: no task folder`);
      if (existsSync(sub)) assert.deepEqual(readdirSync(sub), [], `${name}: no temp folder left`);
    }
    // Once through the real executable: exit status and stderr as a shell sees them.
    writeFileSync(
      join(dir, 'config.yaml'),
      'tasks:\n  t:\n    dataset: good.parquet\n    image_column: picture\n',
    );
    const missing = tlabProcess(dir, 'data', 'build', 'config.yaml', '--quiet');
    assert.equal(missing.status, 1);
    assert.match(missing.first, /^error: config\.yaml: tasks\.t\.image_column: no column 'picture'/);
    assert.match(missing.stderr, /available columns: id, question, answer, image/);
    assert.ok(!existsSync(join(dir, 'formatted_datasets', 't')));
  } finally {
    cleanup();
  }
});

test('tlab data build/inspect/gallery and bookmarks end to end', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(
      join(dir, 'config.yaml'),
      'tasks:\n  grid:\n    dataset: synthetic:grid-world\n    generator: {splits: {train: 2, test: 2}, questions_per_image: 2}\n',
    );
    const built = tlabProcess(dir, 'data', 'build', 'config.yaml', '--quiet', '--json');
    assert.equal(built.status, 0, built.stderr);
    assert.deepEqual(JSON.parse(built.stdout).splits, { train: 4, test: 4 });
    // --quiet alone prints nothing on stdout (nor stderr: no progress); without it the summary stays.
    const quiet = tlabProcess(dir, 'data', 'build', 'config.yaml', '--quiet');
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.equal(quiet.stdout, '');
    assert.equal(quiet.stderr, '');
    const plain = tlabProcess(dir, 'data', 'build', 'config.yaml');
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(JSON.parse(plain.stdout).task, 'grid');
    const uid = JSON.parse(
      readFileSync(join(dir, 'formatted_datasets/grid/test.jsonl'), 'utf8').split('\n')[0],
    ).uid;

    const inspected = tlabProcess(dir, 'data', 'inspect', 'grid', uid, '--export', 'exported');
    assert.equal(inspected.status, 0, inspected.stderr);
    const info = JSON.parse(inspected.stdout);
    assert.equal(info.uid, uid);
    assert.match(info.question, /What object is in row/);
    assert.equal(info.exported.length, 1);
    assert.ok(existsSync(info.exported[0]), info.exported[0]);
    assert.match(
      tlabProcess(dir, 'data', 'inspect', 'grid', 'nope').first,
      /^error: task 'grid': no example with uid 'nope'/,
    );

    const gallery = tlabProcess(dir, 'data', 'gallery', 'grid', '--random', '3', '--out', 'g.png');
    assert.equal(gallery.status, 0, gallery.stderr);
    const png = readFileSync(join(dir, 'g.png'));
    assert.equal(png.subarray(1, 4).toString(), 'PNG');

    assert.equal(tlabProcess(dir, 'bookmark', 'add', 'grid', uid, '--note', 'hard one').status, 0);
    const list = tlabProcess(dir, 'bookmark', 'list');
    assert.deepEqual(JSON.parse(list.stdout), { task: 'grid', uid, note: 'hard one' });
    assert.equal(JSON.parse(tlabProcess(dir, 'bookmark', 'next').stdout).uid, uid);
    assert.equal(tlabProcess(dir, 'bookmark', 'add', 'grid', 'missing-uid').status, 1);
  } finally {
    cleanup();
  }
});
