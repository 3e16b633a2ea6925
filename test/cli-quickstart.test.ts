// `tlab quickstart` itself, and its reuse of the task folder: rebuilt (and the run restarted) when the task
// config changed, reused otherwise (issue 9 #11).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runQuickstart } from '../src/cli/commands/quickstart.ts';

const ROOT = join(import.meta.dirname, '..');

test('tlab quickstart builds the task, trains, prints the learning curve and a JSON summary', () => {
  const out = mkdtempSync(join(tmpdir(), 'tlab-quickstart-'));
  try {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'bin/tlab.js'), 'quickstart', '--out', out, '--max-steps', '3', '--quiet', '--json'],
      { encoding: 'utf8', cwd: ROOT },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /building the grid-world task into /);
    assert.match(r.stderr, /learning curve of gpt2-grid \(3 steps, training loss\):/);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.steps, 3);
    assert.ok(existsSync(join(summary.paths.model, 'model.safetensors')), 'the model folder is saved');
    assert.ok(existsSync(join(out, 'formatted_datasets', 'grid_text', 'manifest.json')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('quickstart reuses the task folder while tasks.yaml is unchanged, rebuilds it (and restarts) when it changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-quickstart-'));
  try {
    const example = join(dir, 'example');
    cpSync(join(ROOT, 'examples/quickstart'), example, { recursive: true });
    const tasks = join(example, 'tasks.yaml');
    const small = readFileSync(tasks, 'utf8').replace(
      '{ train: 600, validation: 60 }',
      '{ train: 64, validation: 16 }',
    );
    assert.notEqual(small, readFileSync(tasks, 'utf8'));
    writeFileSync(tasks, small);
    const out = join(dir, 'out');
    const run = () => runQuickstart({ out, exampleDir: example, maxSteps: 2, quiet: true });
    const first = await run();
    assert.equal(first.built, 'missing');
    assert.equal(first.summary.steps, 2);
    const manifest = () =>
      JSON.parse(readFileSync(join(out, 'formatted_datasets/grid_text/manifest.json'), 'utf8'));
    assert.equal(manifest().splits.train.rows, 64 * 3, '3 questions per grid');
    const again = await run();
    assert.equal(again.built, null, 'unchanged config: the folder is reused');
    assert.equal(again.summary.resumedFrom, 2, 'and the run resumes');
    writeFileSync(tasks, small.replace('{ train: 64, validation: 16 }', '{ train: 48, validation: 16 }'));
    const changed = await run();
    assert.equal(changed.built, 'changed');
    assert.equal(manifest().splits.train.rows, 48 * 3, 'rebuilt from the new config');
    assert.equal(changed.summary.resumedFrom, 0, 'the run on the old task is started over');
    assert.equal(changed.summary.steps, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
