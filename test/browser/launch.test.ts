import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserSkipReason, SKIP_ENV } from './launch.ts';

test('a missing browser fails the browser tests with a clear message unless skipping is asked for', () => {
  const saved = process.env[SKIP_ENV];
  try {
    delete process.env[SKIP_ENV];
    assert.throws(
      () => browserSkipReason('/no/such/chromium'),
      /run scripts\/install-browser\.sh.*TLAB_SKIP_BROWSER_TESTS=1/,
    );
    process.env[SKIP_ENV] = '1';
    assert.match(browserSkipReason('/no/such/chromium') ?? '', /\/no\/such\/chromium is missing/);
    assert.equal(browserSkipReason(process.execPath), null);
  } finally {
    if (saved === undefined) delete process.env[SKIP_ENV];
    else process.env[SKIP_ENV] = saved;
  }
});
