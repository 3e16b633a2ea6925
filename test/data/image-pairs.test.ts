/**
 * The NLVR2-style image-pairs generator: every label follows from the two scenes (checked by an evaluator written
 * here from the template sentences, independent of the generator), labels are balanced, rows are reproducible,
 * a built task holds both images in order (left, right) in one user message, and the gallery shows them side by
 * side.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { loadTaskSplit, openTask } from '../../src/data/read.ts';
import { imagePairs } from '../../src/data/synthetic/image-pairs.ts';
import { GENERATORS } from '../../src/data/synthetic/index.ts';
import { messageImages } from '../../src/data/task-format.ts';
import { renderGallery } from '../../src/report/gallery.ts';
import { tempDir } from './helpers.ts';

type Obj = { color: string; shape: string };

function objects(text: string): Obj[] {
  return text
    ? text.split(', ').map((d) => {
        const [color, shape] = d.split(' ');
        return { color, shape };
      })
    : [];
}

/** "circles" → "circle", "crosses" → "cross". */
const singular = (w: string) => (/(ch|sh|x|s)es$/.test(w) ? w.slice(0, -2) : w.replace(/s$/, ''));
const WORDS: Record<string, number> = { one: 1, two: 2, three: 3 };

/** The truth of a generated sentence about the scenes, from the sentence alone. */
function truth(sentence: string, left: Obj[], right: Obj[]): boolean {
  const side = (s: string) => (s === 'left' ? left : right);
  const count = (os: Obj[], f: (o: Obj) => boolean) => os.filter(f).length;
  let m = /^The (left|right) image contains exactly (\w+) (\w+) (\w+)\.$/.exec(sentence);
  if (m) return count(side(m[1]), (o) => o.color === m![3] && o.shape === singular(m![4])) === WORDS[m[2]];
  m = /^The (left|right) image contains no (\w+) objects\.$/.exec(sentence);
  if (m) return count(side(m[1]), (o) => o.color === m![2]) === 0;
  m = /^There are (-?\d+) objects in total in the two images\.$/.exec(sentence);
  if (m) return Number(m[1]) === left.length + right.length;
  m = /^There are more (\w+) objects in the left image than in the right image\.$/.exec(sentence);
  if (m) return count(left, (o) => o.color === m![1]) > count(right, (o) => o.color === m![1]);
  m = /^There are more (\w+) in the left image than in the right image\.$/.exec(sentence);
  if (m) {
    const shape = singular(m[1]);
    return count(left, (o) => o.shape === shape) > count(right, (o) => o.shape === shape);
  }
  if (sentence === 'The two images contain the same number of objects.') return left.length === right.length;
  m = /^Both images contain a (\w+) object\.$/.exec(sentence);
  if (m) return left.some((o) => o.color === m![1]) && right.some((o) => o.color === m![1]);
  m = /^Both images contain a (\w+) (\w+)\.$/.exec(sentence);
  if (m) {
    const has = (os: Obj[]) => os.some((o) => o.color === m![1] && o.shape === m![2]);
    return has(left) && has(right);
  }
  m = /^Only the (left|right) image contains a (\w+)\.$/.exec(sentence);
  if (m) {
    const [a, b] = m[1] === 'left' ? [left, right] : [right, left];
    return a.some((o) => o.shape === m![2]) && !b.some((o) => o.shape === m![2]);
  }
  if (sentence === 'All objects in the two images have the same colour.')
    return new Set([...left, ...right].map((o) => o.color)).size === 1;
  throw new Error(`unknown sentence: ${sentence}`);
}

test('image-pairs: labels follow from the scenes, are balanced, cover every template, and rows are reproducible', async () => {
  const params = imagePairs.params.parse({ splits: { train: 120 }, image_size: 48 });
  const rows = await Promise.all(
    Array.from({ length: 120 }, (_, i) => imagePairs.row(params, 3, 'train', i)),
  );
  const templates = new Set<string>();
  let trueCount = 0;
  for (const r of rows) {
    const expected = truth(
      String(r.sentence),
      objects(String(r.left_objects)),
      objects(String(r.right_objects)),
    );
    assert.equal(
      r.label,
      expected ? 'True' : 'False',
      `${r.sentence} | ${r.left_objects} | ${r.right_objects}`,
    );
    templates.add(String(r.template));
    if (r.label === 'True') trueCount++;
  }
  assert.equal(templates.size, 10, `templates seen: ${[...templates].join(', ')}`);
  assert.ok(trueCount > 40 && trueCount < 80, `${trueCount} of 120 true`);
  const again = await imagePairs.row(params, 3, 'train', 17);
  assert.deepEqual(again, rows[17]);
  const image = (rows[0].left as { bytes: Uint8Array }).bytes;
  const meta = await sharp(image).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 48, 48]);
  assert.equal(GENERATORS['image-pairs'], imagePairs, 'registered');
});

test('image-pairs: a subset of templates, and one object per scene for a colour-only task', async () => {
  const params = imagePairs.params.parse({
    splits: { train: 30 },
    templates: ['both_color'],
    min_objects: 1,
    max_objects: 1,
    colors: ['red', 'blue'],
  });
  for (let i = 0; i < 30; i++) {
    const r = await imagePairs.row(params, 1, 'train', i);
    assert.equal(r.template, 'both_color');
    assert.equal(objects(String(r.left_objects)).length, 1);
  }
  assert.throws(() => imagePairs.params.parse({ templates: ['most'] }));
});

test('a built image-pairs task holds both images in order, and the gallery shows them side by side', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(
      join(dir, 'tasks.yaml'),
      `tasks:\n  pairs:\n    dataset: synthetic:image-pairs\n    generator: {splits: {train: 4}, image_size: 40}\n`,
    );
    await buildTasksFromFile(join(dir, 'tasks.yaml'), { outDir: join(dir, 'out'), quiet: true });
    const task = openTask(join(dir, 'out', 'pairs'));
    const examples = await loadTaskSplit(task.dir, 'train');
    assert.equal(examples.length, 4);
    for (const e of examples) {
      const images = messageImages(e.messages);
      assert.equal(images.length, 2, 'two image parts in one message');
      assert.notEqual(images[0], images[1]);
      // In placeholder order: the left image first, as the statement's "left" means.
      assert.deepEqual(
        e.metadata.images.map((i) => [i.column, i.file]),
        [
          ['left', images[0]],
          ['right', images[1]],
        ],
      );
      assert.ok(e.metadata.fields.left_objects && e.metadata.fields.right_objects, 'both scenes described');
    }
    const png = await renderGallery(examples, {
      columns: 2,
      thumb: 100,
      imagePath: (p) => join(task.dir, p),
    });
    const meta = await sharp(png).metadata();
    // Two cells per row, each two thumbs wide (the pair side by side), plus padding.
    assert.equal(meta.width, 10 + 2 * (200 + 10));
    assert.ok(readFileSync(join(task.dir, messageImages(examples[0].messages)[1])).length > 0);
  } finally {
    cleanup();
  }
});
