#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test. Node 20 neither discovers .ts files nor expands globs, so the
// file list is built here; a run that finds or executes no test fails instead of passing silently.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const files = collect(join(root, 'test')).filter(
  (f) => filters.length === 0 || filters.some((x) => f.includes(x)),
);
if (files.length === 0) {
  console.error(
    `run-tests: no test files matched ${filters.length ? filters.join(', ') : 'test/**/*.test.ts'}`,
  );
  process.exit(1);
}
// A private summary file, so concurrent test runs cannot clobber each other's counts.
const summaryPath = join(tmpdir(), `tlab-test-summary-${process.pid}.tap`);
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${summaryPath}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, TLAB_TEST: '1' } },
);
let summary = '';
try {
  summary = readFileSync(summaryPath, 'utf8');
  rmSync(summaryPath);
} catch {}
const count = (key) => Number((summary.match(new RegExp(`^# ${key} (\\d+)`, 'm')) ?? [])[1] ?? 0);
const pass = count('pass');
const fail = count('fail');
console.log(`run-tests: ${files.length} files, ${pass} passed, ${fail} failed, ${count('skipped')} skipped`);
if (result.status !== 0 || fail > 0) process.exit(result.status || 1);
if (pass === 0) {
  console.error('run-tests: no test passed (a run that executes no test is a failure)');
  process.exit(1);
}
