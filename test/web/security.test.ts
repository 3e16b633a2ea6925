/**
 * The dashboard serves only files inside the experiment folder: traversal in every spelling (`..`, percent-encoded
 * dots and slashes, backslashes, NUL, absolute paths, empty segments) is a 400, and symlinks out of the folder,
 * hidden files and folders are 404s — over real HTTP with the raw paths sent as written. It answers only loopback
 * Host names when bound to loopback, refuses a non-loopback bind without a token, and with a token lets in only
 * requests that carry it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { lookupRequestPath } from '../../src/web/request-path.ts';
import { type DashboardHandle, startDashboard } from '../../src/web/server.ts';
import { tlabInProcess } from './study.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-dash-sec-'));
const exp = join(root, 'exp');
const SECRET = 'the secret outside the experiment';

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A GET with the path exactly as given (no client-side normalisation). */
function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(() => {
  mkdirSync(join(exp, 'sub'), { recursive: true });
  mkdirSync(join(exp, 'runs'), { recursive: true });
  writeFileSync(join(root, 'secret.txt'), SECRET);
  writeFileSync(
    join(exp, 'summary.json'),
    JSON.stringify({ schema: 'transferlab-summary/1', experiment: { name: 'sec' } }),
  );
  writeFileSync(join(exp, 'inside.txt'), 'inside');
  writeFileSync(join(exp, 'sub', 'a.txt'), 'a');
  writeFileSync(join(exp, '.hidden'), 'hidden');
  writeFileSync(join(exp, '%2e%2e'), 'a file literally named %2e%2e');
  symlinkSync(join(root, 'secret.txt'), join(exp, 'link-out.txt'));
  symlinkSync(root, join(exp, 'dir-out'));
  symlinkSync(join(exp, 'inside.txt'), join(exp, 'link-in.txt'));
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('files under /files/', () => {
  let dash: DashboardHandle;
  before(async () => {
    dash = await startDashboard({ dir: exp, port: 0 });
  });
  after(() => dash?.close());

  test('files inside the folder are served, a symlink that stays inside too', async () => {
    const r = await get(dash.url, '/files/inside.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'inside');
    assert.equal((await get(dash.url, '/files/sub/a.txt')).body, 'a');
    assert.equal((await get(dash.url, '/files/link-in.txt')).body, 'inside');
    assert.equal(
      (await get(dash.url, '/files/%25252e%25252e')).status,
      404,
      'a double-encoded name is a literal (missing) name',
    );
    assert.equal((await get(dash.url, '/files/%252e%252e')).body, 'a file literally named %2e%2e');
  });

  const traversal = [
    '/files/../secret.txt',
    '/files/sub/../../secret.txt',
    '/files/%2e%2e/secret.txt',
    '/files/%2E%2E/secret.txt',
    '/files/.%2e/secret.txt',
    '/files/..%2fsecret.txt',
    '/files/..%2Fsecret.txt',
    '/files/%2e%2e%2fsecret.txt',
    '/files/sub/..%2F..%2Fsecret.txt',
    '/files/..%5csecret.txt',
    '/files/..\\secret.txt',
    '/files//etc/passwd',
    '/files/%2Fetc%2Fpasswd',
    `/files/${encodeURIComponent(join(root, 'secret.txt'))}`,
    '/files/inside.txt%00.png',
    '/files/./inside.txt',
    '/files/%E0%A4%A',
  ];
  for (const path of traversal)
    test(`${path} is refused (400) and never returns what is outside`, async () => {
      const r = await get(dash.url, path);
      assert.equal(r.status, 400, `${path}: ${r.status} ${r.body}`);
      assert.ok(!r.body.includes(SECRET));
    });

  for (const path of [
    '/files/link-out.txt',
    '/files/dir-out/secret.txt',
    '/files/.hidden',
    '/files/sub',
    '/files/missing.txt',
  ])
    test(`${path} is a 404 (outside through a symlink, hidden, a folder or missing)`, async () => {
      const r = await get(dash.url, path);
      assert.equal(r.status, 404, `${path}: ${r.status} ${r.body}`);
      assert.ok(!r.body.includes(SECRET));
    });

  test('no other route reaches files: /app, /vendor, /shared and the root only serve their allow-lists', async () => {
    for (const path of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/app/../../../package.json',
      '/app/%2e%2e/%2e%2e/server.ts',
      '/vendor/../package.json',
      '/vendor/ort/..%2f..%2fpackage.json',
      '/shared/../experiment.ts',
      '/app/views',
      '/vendor/vega.js',
    ]) {
      const r = await get(dash.url, path);
      assert.equal(r.status, 404, `${path}: ${r.status}`);
      assert.ok(!r.body.includes(SECRET) && !r.body.includes('"dependencies"'), path);
    }
    assert.equal((await get(dash.url, '/vendor/vega.min.js')).status, 200);
    assert.equal((await get(dash.url, '/app/app.js')).status, 200);
  });

  test('names in API queries are checked before any path is built from them', async () => {
    const a = await get(
      dash.url,
      `/api/samples?model=${encodeURIComponent('../../..')}&task=${encodeURIComponent('../secret')}`,
    );
    assert.ok(a.status === 404 || a.status === 400, `${a.status}`);
    const b = await get(dash.url, `/api/sample?task=${encodeURIComponent('../..')}&uid=x`);
    assert.equal(b.status, 404);
    assert.ok(!a.body.includes(SECRET) && !b.body.includes(SECRET));
  });

  test('a Host header that is not a loopback name is refused (DNS rebinding)', async () => {
    const r = await get(dash.url, '/api/experiment', { Host: 'attacker.example:80' });
    assert.equal(r.status, 403);
    assert.equal((await get(dash.url, '/api/experiment', { Host: 'localhost' })).status, 200);
  });

  test('every response carries a Content-Security-Policy without remote sources', async () => {
    const r = await get(dash.url, '/');
    assert.equal(r.status, 200);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /https?:|\*/);
  });
});

describe('binding and tokens', () => {
  test('a non-loopback host needs a token', async () => {
    await assert.rejects(
      startDashboard({ dir: exp, host: '0.0.0.0', port: 0 }),
      /--host 0\.0\.0\.0: .*only with --token/,
    );
    await assert.rejects(startDashboard({ dir: exp, port: 0, token: 'short' }), /at least 8 characters/);
    const d = await startDashboard({ dir: exp, host: '0.0.0.0', port: 0, token: 'a-long-secret' });
    try {
      const port = new URL(d.url).port;
      const r = await get(`http://127.0.0.1:${port}/`, '/api/experiment', { Host: 'lab.example.org' });
      assert.equal(r.status, 401, 'the Host check gives way to the token, which is still required');
    } finally {
      await d.close();
    }
  });

  test('with a token, only requests carrying it get in; ?token= sets a cookie and drops it from the URL', async () => {
    const token = 'correct-horse-battery';
    const d = await startDashboard({ dir: exp, port: 0, token });
    try {
      assert.match(d.url, /\?token=correct-horse-battery$/);
      const base = d.url.replace(/\?.*$/, '');
      assert.equal((await get(base, '/api/experiment')).status, 401);
      assert.equal((await get(base, '/files/inside.txt')).status, 401);
      assert.equal((await get(base, '/?token=wrong-token-here')).status, 401);
      const first = await get(base, '/?token=correct-horse-battery#/runs');
      assert.equal(first.status, 303);
      assert.equal(first.headers.location, '/');
      const cookie = String(first.headers['set-cookie']);
      assert.match(cookie, /^tlab_dashboard=correct-horse-battery; HttpOnly; SameSite=Strict/);
      assert.equal((await get(base, '/files/inside.txt', { Cookie: cookie.split(';')[0] })).body, 'inside');
      assert.equal((await get(base, '/api/experiment', { Authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await get(base, '/api/experiment', { Authorization: 'Bearer nope' })).status, 401);
    } finally {
      await d.close();
    }
  });
});

describe('CLI', () => {
  test('tlab dashboard and tlab report have --help; a folder that is not an experiment is refused by name', async () => {
    assert.match(await tlabInProcess(['dashboard', '--help']), /--token <secret>[\s\S]*--serve-url <url>/);
    assert.match(await tlabInProcess(['report', '--help']), /--out <dir>[\s\S]*--json/);
    await assert.rejects(tlabInProcess(['report', join(root, 'nope')]), /no such folder/);
    await assert.rejects(
      tlabInProcess(['dashboard', join(exp, 'sub'), '--port', '0']),
      /not an experiment folder/,
    );
  });
});

test('lookupRequestPath: the segment rules on their own', () => {
  assert.deepEqual(lookupRequestPath(exp, '..'), { ok: false, status: 400, reason: 'path traversal' });
  assert.equal(lookupRequestPath(exp, 'sub%2fa.txt').ok, false, 'an encoded slash is not a separator');
  const ok = lookupRequestPath(exp, 'sub/a.txt?x=1');
  assert.ok(ok.ok && ok.path.endsWith(join('sub', 'a.txt')));
});
