import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultSessionConfig } from '../../src/engine/runtime/session.ts';
import {
  ENV_SETTINGS,
  executionProvidersSetting,
  linalgThreadsSetting,
  linalgWasmSetting,
  ortProfileSetting,
  threadsSetting,
  unknownEnvSettings,
} from '../../src/util/env.ts';

test('TLAB_* settings: valid values parse, bad ones are errors naming the variable and what is valid', () => {
  assert.equal(threadsSetting({}), undefined);
  assert.equal(threadsSetting({ TLAB_THREADS: '3' }), 3);
  for (const bad of ['abc', '0', '-2', '1.5', '2x'])
    assert.throws(
      () => threadsSetting({ TLAB_THREADS: bad }),
      new RegExp(`^TlabError: TLAB_THREADS='${bad.replace('.', '\\.')}': expected a positive integer`),
    );
  assert.equal(linalgThreadsSetting({ TLAB_THREADS: '4' }), 4, 'falls back to TLAB_THREADS');
  assert.equal(linalgThreadsSetting({ TLAB_THREADS: '4', TLAB_LINALG_THREADS: '2' }), 2);
  assert.throws(() => linalgThreadsSetting({ TLAB_LINALG_THREADS: 'many' }), /TLAB_LINALG_THREADS='many'/);
  assert.throws(() => linalgThreadsSetting({ TLAB_THREADS: 'x' }), /TLAB_THREADS='x'/);
  assert.deepEqual(executionProvidersSetting({}), ['cpu']);
  assert.deepEqual(executionProvidersSetting({ TLAB_EXECUTION_PROVIDERS: 'CUDA, cpu' }), ['cuda', 'cpu']);
  assert.throws(
    () => executionProvidersSetting({ TLAB_EXECUTION_PROVIDERS: 'cuda,gpu' }),
    /TLAB_EXECUTION_PROVIDERS='cuda,gpu': 'gpu' is not an execution provider; valid: cpu, cuda/,
  );
  assert.equal(ortProfileSetting({ TLAB_ORT_PROFILE: 'prof/run' }), 'prof/run');
  assert.equal(linalgWasmSetting({}), true);
  assert.equal(linalgWasmSetting({ TLAB_LINALG_WASM: '0' }), false);
  assert.throws(() => linalgWasmSetting({ TLAB_LINALG_WASM: 'no' }), /TLAB_LINALG_WASM='no': expected 1/);
  assert.deepEqual(unknownEnvSettings({ TLAB_THREADS: '2', TLAB_TEST: '1', PATH: '/bin' }), []);
  assert.match(
    unknownEnvSettings({ TLAB_THRADS: '2' })[0],
    /^TLAB_THRADS is not a transferlab setting \(did you mean 'TLAB_THREADS'\?\)/,
  );
});

test('the engine reads TLAB_THREADS through env.ts: a bad value is an error, not every core in silence', () => {
  const saved = process.env.TLAB_THREADS;
  try {
    process.env.TLAB_THREADS = '3';
    assert.equal(defaultSessionConfig().threads, 3);
    process.env.TLAB_THREADS = 'lots';
    assert.throws(() => defaultSessionConfig(), /TLAB_THREADS='lots': expected a positive integer/);
  } finally {
    if (saved === undefined) delete process.env.TLAB_THREADS;
    else process.env.TLAB_THREADS = saved;
  }
});

test('no module but src/util/env.ts reads process.env.TLAB_*, and the README lists every setting', () => {
  const root = join(import.meta.dirname, '../../src');
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith(join('util', 'env.ts'))) {
        if (/process\.env\.TLAB_|process\.env\[['"`]TLAB_|env\.TLAB_/.test(readFileSync(p, 'utf8')))
          offenders.push(p);
      }
    }
  };
  walk(root);
  assert.deepEqual(offenders, []);
  const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
  for (const name of Object.keys(ENV_SETTINGS))
    assert.ok(readme.includes(`\`${name}`), `README names ${name}`);
});
