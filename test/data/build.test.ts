import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { sha256Hex } from '../../src/data/hash.ts';
import { loadTaskSplit, openTask, readTaskSplit } from '../../src/data/read.ts';
import { messageImages, messageText, type TaskExample } from '../../src/data/task-format.ts';
import { solidPng, tempDir, vqaRows, writeVqaParquet } from './helpers.ts';

/** Every file under a folder with its SHA-256, for byte-identity checks. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
      else out[`${prefix}${e.name}`] = sha256Hex(readFileSync(join(d, e.name)));
    }
  };
  walk(dir, '');
  return out;
}

const SYNTHETIC = (seed: number) => `
tasks:
  grid:
    dataset: synthetic:grid-world
    seed: ${seed}
    generator: {splits: {train: 6, test: 3}, questions_per_image: 2, cell_size: 24}
  grid-text:
    dataset: synthetic:grid-world
    seed: ${seed}
    generator: {splits: {train: 3}, modality: text, instructions: multi, questions_per_image: 4}
  pairs:
    dataset: synthetic:image-pairs
    seed: ${seed}
    generator: {splits: {train: 4, test: 2}, image_size: 48}
  counting:
    dataset: synthetic:counting
    seed: ${seed}
    generator: {splits: {train: 4}, image_size: 48}
  spatial:
    dataset: synthetic:spatial
    seed: ${seed}
    generator: {splits: {train: 4}, image_size: 48, format: yes_no}
  forms:
    dataset: synthetic:json-extraction
    seed: ${seed}
    generator: {splits: {train: 2, test: 2}, image_width: 240}
`;

test('building the same config twice gives byte-identical folders; another seed changes them', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'a.yaml'), SYNTHETIC(1));
    writeFileSync(join(dir, 'b.yaml'), SYNTHETIC(2));
    await buildTasksFromFile(join(dir, 'a.yaml'), { outDir: join(dir, 'out1'), quiet: true });
    await buildTasksFromFile(join(dir, 'a.yaml'), { outDir: join(dir, 'out2'), quiet: true });
    await buildTasksFromFile(join(dir, 'b.yaml'), { outDir: join(dir, 'out3'), quiet: true });
    const first = snapshot(join(dir, 'out1'));
    assert.ok(Object.keys(first).length > 20);
    assert.deepEqual(snapshot(join(dir, 'out2')), first);
    const third = snapshot(join(dir, 'out3'));
    for (const task of ['grid', 'pairs', 'counting', 'spatial', 'forms'])
      assert.notEqual(third[`${task}/train.jsonl`], first[`${task}/train.jsonl`], task);
    const manifest = JSON.parse(readFileSync(join(dir, 'out1/grid/manifest.json'), 'utf8'));
    assert.equal(manifest.generator.name, 'grid-world');
    assert.equal(manifest.generator.params.questions_per_image, 2);
    assert.equal(manifest.generator.seed, 1);
    assert.equal(manifest.tool.name, 'transferlab');
    assert.deepEqual(manifest.splits.train.rows, 12);
    assert.equal(manifest.splits.train.sha256, first['grid/train.jsonl']);
    assert.doesNotMatch(JSON.stringify(manifest), /\d{4}-\d\d-\d\dT\d\d:/, 'no timestamps');
  } finally {
    cleanup();
  }
});

test('grid world rows: chat messages with image parts, one image per grid, labels; text and multi variants', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'c.yaml'), SYNTHETIC(0));
    await buildTasksFromFile(join(dir, 'c.yaml'), {
      outDir: dir,
      tasks: ['grid', 'grid-text', 'pairs', 'forms'],
      quiet: true,
    });
    const task = openTask(join(dir, 'grid'));
    const train = await loadTaskSplit(task.dir, 'train');
    assert.equal(train.length, 12);
    const ex = train[0];
    assert.deepEqual(
      ex.messages.map((m) => m.role),
      ['user', 'assistant'],
    );
    assert.equal(ex.messages[0].content[0].type, 'image');
    assert.match(messageText(ex.messages[0]), /What object is in row \d, column \d\?$/);
    assert.equal(ex.answer, messageText(ex.messages[1]));
    assert.equal(ex.label, ex.answer);
    assert.ok(task.labelIndex(ex) >= 0);
    assert.equal(task.grader, 'ExactMatchGrader');
    // Two questions per grid share one stored image.
    assert.equal(messageImages(train[0].messages)[0], messageImages(train[1].messages)[0]);
    assert.equal(readdirSync(join(task.dir, 'images')).length, 9);
    const cells = ex.metadata.fields.grid_text as string;
    const [r, c] = [ex.metadata.fields.row as number, ex.metadata.fields.col as number];
    assert.equal(
      cells
        .split('\n')
        [r].split('|')
        .map((s) => s.trim())
        .filter(Boolean)[c],
      ex.answer,
    );

    const text = await loadTaskSplit(join(dir, 'grid-text'), 'train');
    assert.equal(text.length, 3);
    assert.equal(messageImages(text[0].messages).length, 0);
    assert.match(messageText(text[0].messages[0]), /^\| \w+ \| \w+ \| \w+ \|\n/);
    assert.equal(text[0].answer?.split('\n').length, 4);
    assert.equal(text[0].label, undefined);

    const pair = (await loadTaskSplit(join(dir, 'pairs'), 'train'))[0];
    assert.equal(messageImages(pair.messages).length, 2);
    assert.ok(['True', 'False'].includes(pair.answer as string));
    const form = (await loadTaskSplit(join(dir, 'forms'), 'test'))[0];
    assert.equal(openTask(join(dir, 'forms')).grader, 'JSONGrader');
    assert.deepEqual(Object.keys(JSON.parse(form.answer as string)).sort(), [
      'date',
      'invoice_id',
      'name',
      'total',
    ]);
  } finally {
    cleanup();
  }
});

async function parquetDataset(dir: string, n: number): Promise<void> {
  const rows = await vqaRows(n);
  rows.push({ ...rows[0] }); // an exact duplicate of row 0
  writeVqaParquet(join(dir, 'train.parquet'), rows, 3);
  writeVqaParquet(
    join(dir, 'test.parquet'),
    (await vqaRows(4, 't')).map((r) => ({ ...r, image: null })),
    3,
  );
}

test('Parquet task: streaming and cached builds are identical; sampling, resplit, dedupe, uid column, few-shot', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await parquetDataset(join(dir), 20);
    const config = (mode: string) => `
tasks:
  vqa:
    dataset: .
    mode: ${mode}
    system_prompt: Answer briefly.
    user_prompt: "Question: {question} ({{literal}}) {\\"schema\\": 1}"
    image_column: image
    assistant_text_column: answer
    label_column: answer
    grader: ExactMatchGrader
  sampled:
    dataset: .
    splits: [train]
    resplit: {train: 0.5, validation: 0.25, test: 0.25}
    sample_percent: 0.5
    seed: 3
    user_prompt: "{question}"
    assistant_text_column: answer
    uid_column: id
    dedupe: false
  fewshot:
    dataset: .
    n_samples: {train: 10}
    user_prompt: "{question}"
    assistant_text_column: answer
    few_shot: {k: 2, pool_size: 5}
`;
    writeFileSync(join(dir, 's.yaml'), config('streaming'));
    writeFileSync(join(dir, 'c.yaml'), config('cached'));
    await buildTasksFromFile(join(dir, 's.yaml'), { outDir: join(dir, 'out-s'), quiet: true });
    await buildTasksFromFile(join(dir, 'c.yaml'), { outDir: join(dir, 'out-c'), quiet: true });
    assert.deepEqual(
      snapshot(join(dir, 'out-c')),
      snapshot(join(dir, 'out-s')),
      'mode never changes the output',
    );

    const vqa = openTask(join(dir, 'out-s/vqa'));
    assert.deepEqual(vqa.manifest.sampling.duplicates_dropped, { train: 1, test: 0 });
    assert.equal(vqa.manifest.splits.train.rows, 20);
    assert.deepEqual(vqa.labels, ['blue', 'red']);
    assert.equal(vqa.manifest.source.files.length, 2);
    assert.equal(vqa.manifest.source.files[0].sha256, sha256Hex(readFileSync(join(dir, 'train.parquet'))));
    const first = (await loadTaskSplit(vqa.dir, 'train'))[0];
    assert.equal(
      messageText(first.messages[1]),
      'Question: What colour is image 0? ({literal}) {"schema": 1}',
    );
    assert.equal(first.metadata.source_file, 'train.parquet');
    assert.deepEqual(first.metadata.fields, {
      id: 'q0',
      question: 'What colour is image 0?',
      answer: 'blue',
    });
    assert.equal(first.metadata.images[0].source_path, 'img0.png');
    const test0 = (await loadTaskSplit(vqa.dir, 'test'))[0];
    assert.equal(messageImages(test0.messages).length, 0, 'a null image is no image part');

    const sampled = openTask(join(dir, 'out-s/sampled'));
    assert.deepEqual(sampled.manifest.sampling.selected, { train: 6, validation: 3, test: 2 }); // round(0.5 * 21) = 11 rows
    const uids: string[] = [];
    for (const split of sampled.splits)
      for await (const ex of readTaskSplit(sampled.dir, split)) uids.push(ex.uid);
    assert.equal(uids.length, 11);
    assert.ok(uids.every((u) => /^q\d+$/.test(u)));
    assert.equal(new Set(uids).size, 11, 'resplit parts are disjoint');

    const fewshot = openTask(join(dir, 'out-s/fewshot'));
    assert.equal(fewshot.manifest.few_shot?.pool.length, 5);
    const shots: TaskExample[] = await loadTaskSplit(fewshot.dir, 'train');
    assert.equal(shots.length, 10);
    for (const ex of shots) {
      assert.deepEqual(
        ex.messages.map((m) => m.role),
        ['user', 'assistant', 'user', 'assistant', 'user', 'assistant'],
      );
      assert.notEqual(
        messageText(ex.messages[0]),
        messageText(ex.messages[4]),
        'an example is never its own shot',
      );
    }
  } finally {
    cleanup();
  }
});

test('JSONL rows naming image files, data: URLs, and an image-class folder: images stored, labels indexed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'pics'));
    const red = await solidPng(200, 0, 0);
    writeFileSync(join(dir, 'pics/a.png'), red);
    const dataUrl = `data:image/png;base64,${Buffer.from(await solidPng(0, 0, 200)).toString('base64')}`;
    writeFileSync(
      join(dir, 'rows.jsonl'),
      `${JSON.stringify({ img: 'pics/a.png', q: 'colour?', a: 'red' })}\n${JSON.stringify({ img: dataUrl, q: 'colour?', a: 'blue' })}\n`,
    );
    for (const [cls, rgb] of [
      ['cat', [10, 10, 10]],
      ['dog', [250, 250, 250]],
    ] as const) {
      mkdirSync(join(dir, 'classes', cls), { recursive: true });
      writeFileSync(join(dir, 'classes', cls, '1.png'), await solidPng(rgb[0], rgb[1], rgb[2]));
    }
    writeFileSync(
      join(dir, 'config.yaml'),
      'tasks:\n  paths:\n    dataset: rows.jsonl\n    image_column: img\n    user_prompt: "{q}"\n    assistant_text_column: a\n  folder:\n    dataset: classes\n',
    );
    await buildTasksFromFile(join(dir, 'config.yaml'), { outDir: join(dir, 'out'), quiet: true });
    const rows = await loadTaskSplit(join(dir, 'out/paths'), 'train');
    assert.equal(rows[0].metadata.images[0].source_path, 'pics/a.png');
    assert.deepEqual(
      readFileSync(join(dir, 'out/paths', messageImages(rows[0].messages)[0])),
      Buffer.from(red),
    );
    assert.equal(rows[1].metadata.images[0].width, 8);
    const folder = openTask(join(dir, 'out/folder'));
    assert.deepEqual(folder.labels, ['cat', 'dog']);
    const examples = await loadTaskSplit(folder.dir, 'train');
    assert.deepEqual(
      examples.map((e) => [e.label, folder.labelIndex(e)]),
      [
        ['cat', 0],
        ['dog', 1],
      ],
    );
  } finally {
    cleanup();
  }
});
