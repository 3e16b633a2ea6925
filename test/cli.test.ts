import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('tlab --help exits 0 and lists usage', () => {
  const r = spawnSync(process.execPath, ['bin/tlab.js', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: tlab/);
});

test('an unknown command exits non-zero with one clear line', () => {
  const r = spawnSync(process.execPath, ['bin/tlab.js', 'no-such-command'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.split('\n')[0], /^error: /);
});
