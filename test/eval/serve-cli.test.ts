import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { CommanderError } from 'commander';
import { byteSize } from '../../src/cli/commands/serve.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { TlabError } from '../../src/util/errors.ts';
import { saveChatModel } from './inference-fixture.ts';

const folder = saveChatModel();
after(() => folder.remove());

const tlab = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/tlab.js', 'serve', ...args], { encoding: 'utf8', timeout: 120_000 });

test('tlab serve --help lists the options', () => {
  const r = tlab('--help');
  assert.equal(r.status, 0, r.stderr);
  for (const flag of [
    '--host',
    '--port',
    '--api-key',
    '--max-batch',
    '--batch-window-ms',
    '--max-body',
    '--served-model-name',
    '--allowed-local-media-path',
  ])
    assert.ok(r.stdout.includes(flag), flag);
});

/** The CLI in this process: the error it would print, or null when the command returned. */
async function failure(...args: string[]): Promise<string | null> {
  const program = buildProgram();
  const err: string[] = [];
  program.commands
    .find((c) => c.name() === 'serve')!
    .configureOutput({ writeErr: (t) => err.push(t), writeOut: () => {} });
  try {
    await program.parseAsync(['node', 'tlab', 'serve', ...args]);
    return null;
  } catch (error) {
    if (error instanceof TlabError) return error.message;
    if (error instanceof CommanderError) return err.join('');
    throw error;
  }
}

test('bad flags fail with a message naming the flag, before anything listens', async () => {
  assert.match(
    (await failure(folder.dir, '--host', '0.0.0.0', '--port', '0'))!,
    /^--host 0\.0\.0\.0: binding to a non-loopback address needs --api-key/,
  );
  assert.match(
    (await failure(folder.dir, '--served-model-name', 'a', '--served-model-name', 'b'))!,
    /--served-model-name: 2 names for 1 model folder/,
  );
  assert.match(
    (await failure(folder.dir, '--max-body', '12xb'))!,
    /--max-body.*expected a size such as 16mb/,
  );
  assert.match((await failure(folder.dir, '--max-batch', '0'))!, /--max-batch.*expected a positive integer/);
  assert.match(
    (await failure('/no/such/model', '--port', '0'))!,
    /\/no\/such\/model: model folder not found/,
  );
});

test('byteSize reads sizes with units', () => {
  assert.equal(byteSize('16mb'), 16 * 1024 * 1024);
  assert.equal(byteSize('512KB'), 512 * 1024);
  assert.equal(byteSize('1000'), 1000);
  assert.equal(byteSize('1.5k'), 1536);
  assert.throws(() => byteSize('0'), /at least 1 byte/);
  assert.throws(() => byteSize('lots'), /expected a size/);
});
