/**
 * `tlab geometry score` on .npy / .safetensors files: the JSON record of each metric, and one clear error for
 * each kind of bad input (too few samples for k, constant features, mismatched rows, NaN).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { type ScoreOptions, scoreGeometry } from '../../src/geometry/score.ts';
import { readLabelFile, readMatrixFile } from '../../src/metrics/features.ts';
import { writeNpy } from '../../src/metrics/io/npy.ts';
import { Rng } from '../../src/util/random.ts';
import { embed, gaussian } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tlab-geometry-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tlab = (args: string[]) =>
  spawnSync(process.execPath, ['bin/tlab.js', 'geometry', ...args], { encoding: 'utf8' });

const rng = new Rng(1);
const n = 300;
const blobs = new Float64Array(n * 6);
const y = new Int32Array(n);
for (let i = 0; i < n; i++) {
  y[i] = i % 3;
  for (let j = 0; j < 6; j++) blobs[i * 6 + j] = (j === y[i] ? 9 : 0) + rng.normal();
}
writeNpy(join(dir, 'x.npy'), [n, 6], blobs);
writeNpy(join(dir, 'y.npy'), [n], y);
const rotated = embed(gaussian(rng, n, 4), rng, 10);
writeSafetensors(join(dir, 'z.safetensors'), {
  hidden: { dtype: 'float32', shape: [n, 10], data: Float32Array.from(rotated.data) },
});
writeNpy(join(dir, 'small.npy'), [10, 6], blobs.slice(0, 60));
writeNpy(join(dir, 'constant.npy'), [n, 6], new Float64Array(n * 6).fill(2));
const withNan = blobs.slice();
withNan[17 * 6 + 2] = Number.NaN;
writeNpy(join(dir, 'nan.npy'), [n, 6], withNan);
writeNpy(join(dir, 'y-short.npy'), [n - 1], y.slice(1));

/** The CLI's path in-process: the same file readers and scorer, without a process start per case. */
async function score(args: string[]): Promise<Record<string, unknown>> {
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const options: ScoreOptions = {};
  args.forEach((a, i) => {
    if (a !== '--option') return;
    const [k, v] = args[i + 1].split('=');
    options[k] = Number.isFinite(Number(v)) ? Number(v) : v;
  });
  const features = await readMatrixFile(get('--features') as string);
  const fb = get('--features-b');
  const featuresB = fb ? await readMatrixFile(fb) : undefined;
  const lf = get('--labels');
  const labels = lf ? await readLabelFile(lf) : undefined;
  return scoreGeometry(
    get('--metric') as string,
    {
      features,
      featuresB,
      labels: labels?.labels,
      names: { features: features.name, featuresB: featuresB?.name, labels: labels?.name },
    },
    options,
  );
}

test('geometry score: twonn, gride (profile), adp-ari (clusters), label-overlap, probe, overlap and CKA', async () => {
  const x = join(dir, 'x.npy');
  const labels = join(dir, 'y.npy');
  // the command itself, once: JSON on stdout
  const r = tlab(['score', '--features', x, '--metric', 'twonn', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const two = JSON.parse(r.stdout);
  assert.equal(two.metric, 'twonn');
  assert.equal(two.n, n);
  assert.equal(two.d, 6);
  assert.ok(two.value > 3 && two.value < 8, `TwoNN ${two.value}`);
  const g = await score(['--features', join(dir, 'z.safetensors'), '--metric', 'gride', '--option', 'n1=8']);
  assert.equal((g.profile as unknown[]).length, 6);
  assert.ok(Math.abs((g.value as number) - 4) < 0.8, `GRIDE ${g.value}`);
  const adp = await score(['--features', x, '--labels', labels, '--metric', 'adp-ari']);
  assert.equal(adp.clusters, 3);
  assert.equal(adp.value, 1);
  const lo = await score(['--features', x, '--labels', labels, '--metric', 'label-overlap']);
  assert.equal(lo.value, 1);
  const probe = await score(['--features', x, '--labels', labels, '--metric', 'probe', '--option', 'c=1']);
  assert.ok((probe.value as number) > 0.95 && (probe.control as number) < 0.7, JSON.stringify(probe));
  const same = await score(['--features', x, '--features-b', x, '--metric', 'overlap']);
  assert.equal(same.value, 1);
  for (const metric of ['cka-linear', 'cka-rbf', 'cka-debiased']) {
    const c = await score(['--features', x, '--features-b', join(dir, 'z.safetensors'), '--metric', metric]);
    assert.ok((c.value as number) < 0.5, `${metric} of unrelated data ${c.value}`);
  }
});

test('geometry score: one clear error for each bad input', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['--features', join(dir, 'small.npy'), '--metric', 'overlap', '--features-b', join(dir, 'small.npy')],
      /small\.npy: 10 samples, but 30 neighbours per point needs at least 31/,
    ],
    [
      ['--features', join(dir, 'constant.npy'), '--metric', 'twonn'],
      /constant\.npy: all 300 rows are the same point \(constant features\)/,
    ],
    [
      ['--features', join(dir, 'x.npy'), '--labels', join(dir, 'y-short.npy'), '--metric', 'adp-ari'],
      /y-short\.npy has 299 rows but .*x\.npy has 300/,
    ],
    [['--features', join(dir, 'nan.npy'), '--metric', 'gride'], /nan\.npy: row 17 contains NaN \(column 2\)/],
    [
      ['--features', join(dir, 'x.npy'), '--metric', 'twonn', '--option', 'kk=3'],
      /--option kk: twonn has no option 'kk'/,
    ],
    [['--features', join(dir, 'x.npy'), '--metric', 'nope'], /--metric nope: unknown geometry metric/],
    [['--features', join(dir, 'x.npy'), '--metric', 'cka-linear'], /needs --features-b/],
  ];
  for (const [args, pattern] of cases)
    await assert.rejects(score(args), (e: Error) => pattern.test(e.message.split('\n')[0]));
  // through the command: a non-zero exit and the message first on stderr
  const r = tlab(['score', ...cases[1][0]]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.split('\n')[0], cases[1][1]);
});
