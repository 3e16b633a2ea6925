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

const tlab = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('an unknown command fails with did-you-mean whatever flags follow (also --help), at every level', () => {
  for (const args of [['dta', '--help'], ['dta'], ['dta', '-h', '--json']]) {
    const r = tlab(...args);
    assert.equal(r.status, 1, `tlab ${args.join(' ')}`);
    assert.equal(r.stderr.split('\n')[0], "error: tlab: unknown command 'dta' (did you mean 'data'?)");
    assert.doesNotMatch(r.stdout, /Usage:/, 'no help text on stdout');
  }
  const sub = tlab('data', 'biuld', '--help');
  assert.equal(sub.status, 1);
  assert.equal(
    sub.stderr.split('\n')[0],
    "error: tlab data: unknown command 'biuld' (did you mean 'build'?)",
  );
  const far = tlab('zzzzzz', '--help');
  assert.equal(far.status, 1);
  assert.equal(far.stderr.split('\n')[0], "error: tlab: unknown command 'zzzzzz'");
  assert.match(far.stderr, /commands: .*data.*pretrain/);
  // Known commands keep their help.
  const help = tlab('data', 'build', '--help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /Usage: tlab data build/);
});

test('--seed 0 (the documented default) is accepted by pretrain/finetune', () => {
  const r = tlab('pretrain', '/nonexistent/run.yaml', '--seed', '0');
  assert.equal(r.status, 1);
  assert.equal(
    r.stderr.split('\n')[0],
    'error: /nonexistent/run.yaml: cannot read the training config (ENOENT)',
    'the seed parsed; the failure is the missing file',
  );
  const bad = tlab('pretrain', '/nonexistent/run.yaml', '--seed', '-1');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--seed.*expected an integer >= 0, got '-1'/);
});
