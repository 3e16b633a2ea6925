/** counting and spatial as text (the same scenes in words), and json-extraction's document-type label. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { loadTaskSplit, openTask } from '../../src/data/read.ts';
import { GENERATORS } from '../../src/data/synthetic/index.ts';
import type { AnyGenerator } from '../../src/data/synthetic/types.ts';
import { messageImages, messageText } from '../../src/data/task-format.ts';
import { tempDir } from './helpers.ts';

async function rows(g: AnyGenerator, params: Record<string, unknown>, n: number, seed = 4) {
  const p = g.params.parse({ splits: { train: n }, ...params });
  return Promise.all(Array.from({ length: n }, (_, i) => g.row(p, seed, 'train', i)));
}

/** `- a red circle at x=12, y=34` lines of a text scene. */
function listed(scene: string): { color: string; shape: string; x: number; y: number }[] {
  return [...scene.matchAll(/^- a (\w+) (\w+) at x=(\d+), y=(\d+)$/gm)].map((m) => ({
    color: m[1],
    shape: m[2],
    x: Number(m[3]),
    y: Number(m[4]),
  }));
}

test('counting and spatial as text: the same scene, question and answer as the image for the same seed', async () => {
  for (const [name, extra] of [
    ['counting', {}],
    ['spatial', {}],
    ['spatial', { format: 'yes_no' }],
  ] as const) {
    const g = GENERATORS[name];
    const image = await rows(g, { ...extra, image_size: 48 }, 12);
    const text = await rows(g, { ...extra, image_size: 48, modality: 'text' }, 12);
    for (const [i, t] of text.entries()) {
      const im = image[i];
      assert.ok(im.image && !('scene' in im), `${name}: image rows unchanged`);
      assert.equal(t.image, undefined, `${name}: no image as text`);
      for (const k of ['question', 'answer', 'objects', 'kind', 'relation'])
        assert.deepEqual(t[k], im[k], `${name} row ${i}: ${k}`);
      const objects = listed(t.scene as string);
      assert.equal(objects.map((o) => `${o.color} ${o.shape}`).join(', '), t.objects);
      assert.match(t.scene as string, /^A 48 x 48 scene \(x from the left edge, y from the top edge\)/);
      // The answer follows from the text alone.
      if (t.kind === 'count') assert.equal(String(objects.length), t.answer);
      if (name === 'spatial') {
        const [, a, b] = /the (\w+ \w+) (?:relative to|(?:to the \w+ of|above|below)) the (\w+ \w+)\?/.exec(
          t.question as string,
        ) as RegExpExecArray;
        const at = (d: string) => objects.find((o) => `${o.color} ${o.shape}` === d)!;
        const [dx, dy] = [at(a).x - at(b).x, at(a).y - at(b).y];
        const rel = Math.abs(dx) > Math.abs(dy) ? (dx < 0 ? 'left' : 'right') : dy < 0 ? 'above' : 'below';
        assert.equal(rel, t.relation, `${name} row ${i}: ${t.question}`);
      }
    }
    const p = g.params.parse({ modality: 'text' });
    assert.deepEqual(g.columns(p).includes('image'), false);
    assert.equal(g.defaults(p).image_column, undefined);
    assert.match(g.defaults(p).user_prompt ?? '', /^\{scene\}\n/);
    assert.equal(g.params.parse({}).modality, 'image', 'image stays the default');
  }
});

test('counting as text builds a text-only task with the same labels', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(
      join(dir, 'c.yaml'),
      'tasks:\n  c:\n    dataset: synthetic:counting\n    generator: {splits: {train: 4}, modality: text}\n',
    );
    await buildTasksFromFile(join(dir, 'c.yaml'), { outDir: dir, quiet: true });
    const task = openTask(join(dir, 'c'));
    const ex = (await loadTaskSplit(task.dir, 'train'))[0];
    assert.equal(messageImages(ex.messages).length, 0);
    assert.match(messageText(ex.messages[0]), /^A 160 x 160 scene .*\n- a \w+ \w+ at x=\d+, y=\d+\n/);
    assert.ok(task.labelIndex(ex) >= 0);
  } finally {
    cleanup();
  }
});

test('json-extraction: label is the document type, a closed class set in the manifest, drawn from doc_types', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(
      join(dir, 'f.yaml'),
      `tasks:
  forms:
    dataset: synthetic:json-extraction
    generator: {splits: {train: 24}, modality: text}
  two:
    dataset: synthetic:json-extraction
    generator: {splits: {train: 6}, modality: text, doc_types: [receipt, quote]}
`,
    );
    await buildTasksFromFile(join(dir, 'f.yaml'), { outDir: dir, quiet: true });
    const manifest = JSON.parse(readFileSync(join(dir, 'forms', 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.labels, ['invoice', 'purchase_order', 'quote', 'receipt']);
    assert.equal(manifest.config.label_column, 'label');
    const titles: Record<string, string> = {
      invoice: 'INVOICE',
      receipt: 'RECEIPT',
      purchase_order: 'PURCHASE ORDER',
      quote: 'QUOTATION',
    };
    const task = openTask(join(dir, 'forms'));
    const train = await loadTaskSplit(task.dir, 'train');
    for (const ex of train) {
      assert.ok(task.labelIndex(ex) >= 0, ex.uid);
      const record = messageText(ex.messages.find((m) => m.role === 'user')!);
      assert.equal(record.split('\n')[0], titles[ex.label as string]);
      assert.deepEqual(Object.keys(JSON.parse(ex.answer as string)), ['date', 'invoice_id', 'name', 'total']);
    }
    assert.ok(new Set(train.map((e) => e.label)).size >= 3, 'types vary');
    const two = await loadTaskSplit(join(dir, 'two'), 'train');
    assert.deepEqual(openTask(join(dir, 'two')).labels, ['quote', 'receipt']);
    assert.ok(two.every((e) => e.label === 'quote' || e.label === 'receipt'));
  } finally {
    cleanup();
  }
});
