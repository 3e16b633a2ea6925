// A hub cache snapshot is used only when it is whole and its LFS blobs hash to their names (issue 9 #9).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { TaskConfigSchema } from '../../src/data/config.ts';
import { sha256Hex } from '../../src/data/hash.ts';
import { numberedShardGaps } from '../../src/data/sources/hub-snapshot.ts';
import { openSource } from '../../src/data/sources/open-source.ts';
import type { DataSource } from '../../src/data/sources/types.ts';
import { tempDir } from './helpers.ts';

const open = (dataset: string, baseDir: string, mode: 'streaming' | 'cached' = 'cached') =>
  openSource(TaskConfigSchema.parse({ dataset, mode }), {
    baseDir,
    file: 'config.yaml',
    taskPath: ['tasks', 't'],
  });

async function ids(source: DataSource): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const r of source.rows('train')) out.push(r.row.id);
  await source.close();
  return out;
}

const jsonl = (...ids: string[]) => new TextEncoder().encode(ids.map((id) => `{"id":"${id}"}\n`).join(''));

/** huggingface_hub's layout: refs/main, snapshots/<commit>/<path> → ../../blobs/<sha256>. */
function buildHubCache(
  cache: string,
  repoId: string,
  commit: string,
  files: Record<string, Uint8Array>,
): string {
  const repo = join(cache, `datasets--${repoId.replace('/', '--')}`);
  mkdirSync(join(repo, 'refs'), { recursive: true });
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), commit);
  for (const [path, bytes] of Object.entries(files)) {
    const sha = sha256Hex(bytes);
    writeFileSync(join(repo, 'blobs', sha), bytes);
    const link = join(repo, 'snapshots', commit, path);
    mkdirSync(join(link, '..'), { recursive: true });
    symlinkSync(`${'../'.repeat(path.split('/').length + 1)}blobs/${sha}`, link);
  }
  return repo;
}

function withEnv(vars: Record<string, string | undefined>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  return () => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  };
}

test('numbered shards with a gap are an incomplete snapshot: the missing shard is named (offline)', async () => {
  assert.deepEqual(
    numberedShardGaps(['d/train-00000-of-00003.jsonl', 'd/train-00002-of-00003.jsonl', 'x.csv']),
    ['d/train-00001-of-00003.jsonl'],
  );
  const { dir, cleanup } = tempDir();
  const restore = withEnv({ HF_HUB_CACHE: join(dir, 'hub'), HF_HUB_OFFLINE: '1' });
  try {
    buildHubCache(join(dir, 'hub'), 'org/partial', 'a'.repeat(40), {
      'data/train-00000-of-00003.jsonl': jsonl('a', 'b'),
      'data/train-00002-of-00003.jsonl': jsonl('e', 'f'),
    });
    await assert.rejects(
      open('org/partial', dir),
      /^TlabError: org\/partial: the cached snapshot is incomplete: data\/train-00001-of-00003\.jsonl is missing$/m,
    );
  } finally {
    restore();
    cleanup();
  }
});

test('a link to a blob that is gone, or an LFS blob whose bytes do not hash to its name, is an error', async () => {
  const { dir, cleanup } = tempDir();
  const restore = withEnv({ HF_HUB_CACHE: join(dir, 'hub'), HF_HUB_OFFLINE: '1' });
  try {
    const good = jsonl('a', 'b', 'c');
    const repo = buildHubCache(join(dir, 'hub'), 'org/blobs', 'c'.repeat(40), { 'train.jsonl': good });
    assert.deepEqual(await ids(await open('org/blobs', dir)), ['a', 'b', 'c'], 'whole and verified');
    const blob = join(repo, 'blobs', sha256Hex(good));
    writeFileSync(blob, jsonl('a', 'b', 'X')); // same size, other bytes: a damaged blob
    await assert.rejects(open('org/blobs', dir), (e: Error) => {
      assert.match(
        e.message,
        /^org\/blobs: train\.jsonl \(blob .*blobs\/[0-9a-f]{64}\) has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}: it is damaged/,
      );
      return true;
    });
    rmSync(blob);
    await assert.rejects(
      open('org/blobs', dir),
      /org\/blobs: the cached snapshot is incomplete: train\.jsonl is missing/,
    );
  } finally {
    restore();
    cleanup();
  }
});

/** A stand-in for the hub API serving `files`; `fail` names a path answered with 500, `corrupt` one sent altered. */
async function hubServer(
  commit: string,
  files: Record<string, Uint8Array>,
  behaviour: { fail?: string; corrupt?: string },
): Promise<{ server: Server; url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    hits.push(url);
    if (url.startsWith('/api/datasets/org/remote/revision/')) return res.end(JSON.stringify({ sha: commit }));
    if (url.startsWith(`/api/datasets/org/remote/tree/${commit}`))
      return res.end(
        JSON.stringify(
          Object.entries(files).map(([path, b]) => ({
            type: 'file',
            path,
            size: b.length,
            oid: 'git-oid',
            lfs: { oid: sha256Hex(b), size: b.length },
          })),
        ),
      );
    const prefix = `/datasets/org/remote/resolve/${commit}/`;
    const path = url.startsWith(prefix) ? url.slice(prefix.length) : '';
    if (path in files) {
      if (path === behaviour.fail) {
        res.writeHead(500);
        return res.end();
      }
      const bytes = path === behaviour.corrupt ? jsonl('tampered') : files[path];
      res.writeHead(200, { etag: `"${sha256Hex(files[path])}"`, 'content-length': bytes.length });
      return res.end(bytes);
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

test('an interrupted download is seen through the stored file list: an error offline, finished online', async () => {
  const { dir, cleanup } = tempDir();
  const commit = 'd'.repeat(40);
  const files = { 'data/one.jsonl': jsonl('a', 'b'), 'data/two.jsonl': jsonl('c') };
  const broken = await hubServer(commit, files, { fail: 'data/two.jsonl' });
  let healthy: Awaited<ReturnType<typeof hubServer>> | undefined;
  const restore = withEnv({
    HF_HUB_CACHE: join(dir, 'hub'),
    HF_ENDPOINT: broken.url,
    HF_HUB_OFFLINE: undefined,
  });
  try {
    await assert.rejects(
      open('org/remote', dir),
      /org\/remote: the hub answered 500 for .*\/data\/two\.jsonl$/m,
    );
    const repo = join(dir, 'hub', 'datasets--org--remote');
    assert.ok(existsSync(join(repo, 'snapshots', commit, 'data/one.jsonl')), 'the first file arrived');
    // Offline, the snapshot (one file of two, no shard numbers) must not pass for the dataset.
    process.env.HF_HUB_OFFLINE = '1';
    await assert.rejects(
      open('org/remote', dir),
      /org\/remote: the cached snapshot is incomplete: data\/two\.jsonl is missing/,
    );
    // Online again, the download is finished and every row is there.
    delete process.env.HF_HUB_OFFLINE;
    healthy = await hubServer(commit, files, {});
    process.env.HF_ENDPOINT = healthy.url;
    assert.deepEqual(await ids(await open('org/remote', dir)), ['a', 'b', 'c']);
    assert.ok(
      !healthy.hits.some((h) => h.endsWith('/data/one.jsonl')),
      'what was there is not fetched again',
    );
    process.env.HF_HUB_OFFLINE = '1';
    assert.deepEqual(await ids(await open('org/remote', dir)), ['a', 'b', 'c'], 'complete: offline works');
  } finally {
    broken.server.close();
    healthy?.server.close();
    restore();
    cleanup();
  }
});

test('a download whose bytes do not match the SHA-256 the hub lists keeps nothing', async () => {
  const { dir, cleanup } = tempDir();
  const commit = 'e'.repeat(40);
  const hub = await hubServer(commit, { 'train.jsonl': jsonl('a', 'b') }, { corrupt: 'train.jsonl' });
  const restore = withEnv({
    HF_HUB_CACHE: join(dir, 'hub'),
    HF_ENDPOINT: hub.url,
    HF_HUB_OFFLINE: undefined,
  });
  try {
    await assert.rejects(
      open('org/remote', dir),
      /^TlabError: org\/remote: train\.jsonl: the downloaded bytes have SHA-256 [0-9a-f]{64}, the hub lists [0-9a-f]{64}; nothing was kept$/m,
    );
    const repo = join(dir, 'hub', 'datasets--org--remote');
    assert.deepEqual(readdirSync(join(repo, 'blobs')), [], 'no blob, not even a partial one');
    assert.ok(!existsSync(join(repo, 'snapshots', commit, 'train.jsonl')));
  } finally {
    hub.server.close();
    restore();
    cleanup();
  }
});
