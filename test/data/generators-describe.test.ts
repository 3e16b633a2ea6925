/** `tlab data generators --describe [name]`: every parameter with its type, default and valid values. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { GENERATORS } from '../../src/data/synthetic/index.ts';

const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('--describe grid-world lists each parameter with type, default and valid values, and what splits counts', () => {
  const r = tlab(['data', 'generators', '--describe', 'grid-world']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^synthetic:grid-world \(version 1\): /);
  assert.match(r.stdout, /\n {2}rows +integer; default 3; valid: 1\.\.12\n/);
  assert.match(r.stdout, /\n {2}modality +string; default "image"; valid: text \| image \| both\n/);
  assert.match(r.stdout, /note: splits counts grids, not questions/);
  assert.match(r.stdout, /note: .*in multi-question mode \(questions_per_image > 1\)/);
  assert.match(r.stdout, /\n {2}splits +map of name → integer; .* — grids per split, not questions/);
  assert.match(
    r.stdout,
    /\n {2}questions_per_image +integer; .* — .*splits still counts grids, not questions\n/,
  );
});

test('--describe: counting and spatial take modality text | image (default image); json-extraction its doc types', () => {
  for (const name of ['counting', 'spatial']) {
    const r = tlab(['data', 'generators', '--describe', name]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\n {2}modality +string; default "image"; valid: text \| image — /);
  }
  const r = tlab(['data', 'generators', '--describe', 'json-extraction', '--json']);
  const d = JSON.parse(r.stdout);
  const types = d.params.find((p: { name: string }) => p.name === 'doc_types');
  assert.deepEqual(types.default, ['invoice', 'receipt', 'purchase_order', 'quote']);
  assert.match(types.doc, /label column/);
});

test('--describe --json: every generator, every schema field, defaults as the schema parses them', () => {
  const r = tlab(['data', 'generators', '--describe', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const described = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    described.map((d) => d.name),
    Object.keys(GENERATORS).map((n) => `synthetic:${n}`),
  );
  for (const d of described) {
    const g = GENERATORS[d.name.slice('synthetic:'.length)];
    const parsed = g.params.parse({}) as Record<string, unknown>;
    for (const p of d.params)
      if (p.default !== null) assert.deepEqual(p.default, parsed[p.name], `${d.name} ${p.name}`);
    assert.ok(
      d.params.every((p: { type: string }) => p.type.length > 0),
      d.name,
    );
  }
});

test('an unknown generator name lists the valid ones', () => {
  const r = tlab(['data', 'generators', '--describe', 'grid']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--describe: unknown generator 'grid'/);
  assert.match(r.stderr, /valid generators: grid-world, image-pairs, counting, spatial, json-extraction/);
});
