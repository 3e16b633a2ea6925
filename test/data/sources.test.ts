import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { TaskConfigSchema } from '../../src/data/config.ts';
import { sha256Hex } from '../../src/data/hash.ts';
import { discoverSplits, globToRegExp, splitOfPath } from '../../src/data/sources/hf-layout.ts';
import { openSource } from '../../src/data/sources/open-source.ts';
import { csvRecords } from '../../src/data/sources/text-readers.ts';
import type { DataSource, SourceRecord } from '../../src/data/sources/types.ts';
import { solidPng, tempDir, vqaRows, writeVqaParquet } from './helpers.ts';

async function all(source: DataSource, split: string, selected?: Uint8Array): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of source.rows(split, selected)) out.push(r);
  return out;
}

const open = (dataset: string, baseDir: string, extra: Record<string, unknown> = {}) =>
  openSource(TaskConfigSchema.parse({ dataset, ...extra }), {
    baseDir,
    file: 'config.yaml',
    taskPath: ['tasks', 't'],
  });

test('Parquet in HF layout: splits from shard names, image structs as bytes, selection in both modes', async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'ds/data'), { recursive: true });
    const rows = await vqaRows(10);
    writeVqaParquet(join(dir, 'ds/data/train-00000-of-00002.parquet'), rows.slice(0, 6), 2);
    writeVqaParquet(join(dir, 'ds/data/train-00001-of-00002.parquet'), rows.slice(6, 8), 2);
    writeVqaParquet(join(dir, 'ds/data/test-00000-of-00001.parquet'), rows.slice(8), 2);
    for (const mode of ['streaming', 'cached'] as const) {
      const source = await open('ds', dir, { mode });
      assert.deepEqual(source.splits, [
        { name: 'train', numRows: 8 },
        { name: 'test', numRows: 2 },
      ]);
      assert.deepEqual(source.columns, ['id', 'question', 'answer', 'image']);
      assert.equal(
        source.defaults?.image_column,
        'image',
        'the Image feature in the footer names the image column',
      );
      const train = await all(source, 'train');
      assert.deepEqual(
        train.map((r) => r.row.id),
        rows.slice(0, 8).map((r) => r.id),
      );
      const img = train[7].row.image as { bytes: Uint8Array; path: string };
      assert.ok(img.bytes instanceof Uint8Array);
      assert.deepEqual(img.bytes, rows[7].image?.bytes);
      assert.equal(train[7].file, 'data/train-00001-of-00002.parquet');
      assert.equal(train[7].fileRow, 1);
      const pick = new Uint8Array(8);
      pick[1] = 1;
      pick[6] = 1;
      assert.deepEqual(
        (await all(source, 'train', pick)).map((r) => r.index),
        [1, 6],
      );
      await source.close();
    }
  } finally {
    cleanup();
  }
});

test('JSONL and CSV files (quoted fields with commas, quotes and newlines)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'a.jsonl'), '{"x": 1, "y": "a"}\n\n{"x": 2, "y": "b"}\n');
    writeFileSync(join(dir, 'b.csv'), 'q,a\n"hello, world","say ""hi""\nthere"\r\nplain,2\n');
    const jsonl = await open('a.jsonl', dir);
    assert.deepEqual(
      (await all(jsonl, 'train')).map((r) => r.row),
      [
        { x: 1, y: 'a' },
        { x: 2, y: 'b' },
      ],
    );
    const csv = await open('b.csv', dir, { mode: 'cached' });
    assert.deepEqual(csv.columns, ['q', 'a']);
    assert.deepEqual(
      (await all(csv, 'train')).map((r) => r.row),
      [
        { q: 'hello, world', a: 'say "hi"\nthere' },
        { q: 'plain', a: '2' },
      ],
    );
    const chunks = async function* () {
      yield 'a,"b';
      yield '""c",d\n';
    };
    const records: string[][] = [];
    for await (const r of csvRecords(chunks())) records.push(r);
    assert.deepEqual(records, [['a', 'b"c', 'd']]);
  } finally {
    cleanup();
  }
});

test('image folder: class per sub-folder, split folders when present', async () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const [split, cls, n] of [
      ['train', 'cat', 2],
      ['train', 'dog', 1],
      ['test', 'cat', 1],
    ] as const) {
      mkdirSync(join(dir, 'imgs', split, cls), { recursive: true });
      for (let i = 0; i < n; i++)
        writeFileSync(join(dir, 'imgs', split, cls, `${i}.png`), await solidPng(i * 50, 0, 0));
    }
    const source = await open('imgs', dir);
    assert.deepEqual(source.splits, [
      { name: 'train', numRows: 3 },
      { name: 'test', numRows: 1 },
    ]);
    assert.deepEqual(source.labels, ['cat', 'dog']);
    const rows = await all(source, 'train');
    assert.deepEqual(
      rows.map((r) => [r.row.label, r.row.file]),
      [
        ['cat', 'train/cat/0.png'],
        ['cat', 'train/cat/1.png'],
        ['dog', 'train/dog/0.png'],
      ],
    );
  } finally {
    cleanup();
  }
});

test('HF layout rules: split keywords, README configs, globs', () => {
  assert.equal(splitOfPath('data/train-00000-of-00002.parquet'), 'train');
  assert.equal(splitOfPath('default/validation/0000.parquet'), 'validation');
  assert.equal(splitOfPath('dev.jsonl'), 'validation');
  assert.equal(splitOfPath('data/other.parquet'), undefined);
  assert.ok(globToRegExp('data/train-*').test('data/train-00000-of-00001.parquet'));
  assert.ok(!globToRegExp('data/train-*').test('data/x/train-0.parquet'));
  assert.ok(globToRegExp('**/*.parquet').test('a/b/c.parquet'));
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'main'), { recursive: true });
    mkdirSync(join(dir, 'extra'), { recursive: true });
    for (const f of ['main/fit.jsonl', 'main/holdout.jsonl', 'extra/all.jsonl'])
      writeFileSync(join(dir, f), '{"a":1}\n');
    writeFileSync(
      join(dir, 'README.md'),
      '---\nconfigs:\n- config_name: main\n  default: true\n  data_files:\n  - split: train\n    path: main/fit.jsonl\n  - split: test\n    path: main/holdout.jsonl\n- config_name: extra\n  data_files: extra/*.jsonl\n---\n# card\n',
    );
    assert.deepEqual(
      [...discoverSplits(dir)],
      [
        ['train', ['main/fit.jsonl']],
        ['test', ['main/holdout.jsonl']],
      ],
    );
    assert.deepEqual([...discoverSplits(dir, 'extra')], [['train', ['extra/all.jsonl']]]);
    assert.throws(() => discoverSplits(dir, 'nope'), /subset 'nope' not in the dataset card[\s\S]*/);
  } finally {
    cleanup();
  }
});

/** Lays out a dataset exactly as huggingface_hub caches it: refs/main, snapshots/<commit>/... → blobs/<sha256>. */
function buildHubCache(
  cache: string,
  repoId: string,
  commit: string,
  files: Record<string, Uint8Array>,
): void {
  const repo = join(cache, `datasets--${repoId.replace('/', '--')}`);
  mkdirSync(join(repo, 'refs'), { recursive: true });
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), commit);
  for (const [path, bytes] of Object.entries(files)) {
    const sha = sha256Hex(bytes);
    writeFileSync(join(repo, 'blobs', sha), bytes);
    const link = join(repo, 'snapshots', commit, path);
    mkdirSync(join(link, '..'), { recursive: true });
    const depth = path.split('/').length + 1;
    symlinkSync(`${'../'.repeat(depth)}blobs/${sha}`, link);
  }
}

test('hub id resolves from the HF cache (HF_HUB_CACHE), offline; fingerprints come from blob names', async () => {
  const { dir, cleanup } = tempDir();
  const saved = { cache: process.env.HF_HUB_CACHE, offline: process.env.HF_HUB_OFFLINE };
  try {
    const shard = join(dir, 'shard.parquet');
    writeVqaParquet(shard, await vqaRows(3));
    const bytes = new Uint8Array(readFileSync(shard));
    const commit = 'a'.repeat(40);
    buildHubCache(join(dir, 'hub'), 'someorg/tiny-vqa', commit, {
      'data/train-00000-of-00001.parquet': bytes,
    });
    process.env.HF_HUB_CACHE = join(dir, 'hub');
    process.env.HF_HUB_OFFLINE = '1';
    const source = await open('someorg/tiny-vqa', dir);
    assert.deepEqual(source.splits, [{ name: 'train', numRows: 3 }]);
    const fp = await source.fingerprint();
    assert.equal(fp.kind, 'hub');
    assert.equal(fp.revision, commit);
    assert.deepEqual(fp.files, [
      { path: 'data/train-00000-of-00001.parquet', bytes: bytes.length, sha256: sha256Hex(bytes) },
    ]);
    await source.close();
    await assert.rejects(
      open('someorg/absent', dir),
      /someorg\/absent: not in the Hugging Face cache .* HF_HUB_OFFLINE/,
    );
  } finally {
    process.env.HF_HUB_CACHE = saved.cache;
    if (saved.cache === undefined) delete process.env.HF_HUB_CACHE;
    if (saved.offline === undefined) delete process.env.HF_HUB_OFFLINE;
    else process.env.HF_HUB_OFFLINE = saved.offline;
    cleanup();
  }
});

test('hub download (cached mode) and range reads (streaming) against a local stand-in for the hub API', async () => {
  const { dir, cleanup } = tempDir();
  const shardPath = join(dir, 'shard.parquet');
  writeVqaParquet(shardPath, await vqaRows(5), 2);
  const shard = readFileSync(shardPath);
  const sha = sha256Hex(shard);
  const commit = 'b'.repeat(40);
  const ranges: string[] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url.startsWith('/api/datasets/org/remote/revision/main'))
      return res.end(JSON.stringify({ sha: commit }));
    if (url.startsWith(`/api/datasets/org/remote/tree/${commit}`))
      return res.end(
        JSON.stringify([
          {
            type: 'file',
            path: 'data/train-00000-of-00001.parquet',
            size: shard.length,
            oid: 'x',
            lfs: { oid: sha, size: shard.length },
          },
        ]),
      );
    if (url === `/datasets/org/remote/resolve/${commit}/data/train-00000-of-00001.parquet`) {
      const range = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
      if (range) {
        ranges.push(req.headers.range as string);
        const start = Number(range[1]);
        const end = range[2] ? Number(range[2]) + 1 : shard.length;
        res.writeHead(206, { 'content-range': `bytes ${start}-${end - 1}/${shard.length}` });
        return res.end(shard.subarray(start, end));
      }
      res.writeHead(200, { etag: `"${sha}"`, 'content-length': shard.length });
      return res.end(shard);
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const saved = { cache: process.env.HF_HUB_CACHE, endpoint: process.env.HF_ENDPOINT };
  try {
    process.env.HF_HUB_CACHE = join(dir, 'hub');
    process.env.HF_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const streamed = await open('org/remote', dir, { mode: 'streaming' });
    assert.equal((await all(streamed, 'train')).length, 5);
    assert.ok(ranges.length > 0, 'streaming reads byte ranges');
    assert.equal((await streamed.fingerprint()).files[0].sha256, sha);
    await streamed.close();
    const cached = await open('org/remote', dir, { mode: 'cached' });
    assert.deepEqual(
      (await all(cached, 'train')).map((r) => r.row.id),
      ['q0', 'q1', 'q2', 'q3', 'q4'],
    );
    await cached.close();
    const repo = join(dir, 'hub', 'datasets--org--remote');
    assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), commit);
    assert.deepEqual(readFileSync(join(repo, 'blobs', sha)), shard);
    assert.deepEqual(
      readFileSync(join(repo, 'snapshots', commit, 'data/train-00000-of-00001.parquet')),
      shard,
    );
  } finally {
    server.close();
    process.env.HF_HUB_CACHE = saved.cache;
    if (saved.cache === undefined) delete process.env.HF_HUB_CACHE;
    process.env.HF_ENDPOINT = saved.endpoint;
    if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT;
    cleanup();
  }
});
