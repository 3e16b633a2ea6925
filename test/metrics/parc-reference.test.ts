// PARC against the reference implementation itself: dbolya/parc's methods.py run with Debian's scikit-learn by
// test/fixtures/metrics/make_parc_reference.py (inputs where the reference's randomized PCA is exact), with
// D < 32, D = 32 and D > 32. The reference runs PCA whatever D is; transferlab's default pcaDims 32 must agree.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { matrix } from '../../src/linalg/matrix.ts';
import { pca } from '../../src/linalg/pca.ts';
import { readNpy } from '../../src/metrics/io/npy.ts';
import { parc } from '../../src/metrics/parc.ts';

const DIR = join(import.meta.dirname, '../fixtures/metrics/parc_reference');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as {
  cases: Record<string, { d: number; reference_n_dims: number; parc: number; parc_no_pca: number }>;
};

function load(name: string) {
  const f = readNpy(join(DIR, `${name}_features.npy`));
  const y = readNpy(join(DIR, `${name}_labels.npy`));
  return {
    f: matrix(f.shape[0], f.shape[1], f.data as Float64Array),
    y: Int32Array.from(y.data as BigInt64Array, Number),
  };
}

const close = (got: number, want: number, what: string) =>
  assert.ok(
    Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)),
    `${what}: got ${got}, reference ${want}`,
  );

for (const [name, e] of Object.entries(expected.cases)) {
  test(`PARC equals dbolya/parc's methods.py on ${name} (D = ${e.d})`, async () => {
    const { f, y } = load(name);
    // Below D = 32 the reference (which refuses more components than D) ran with n_dims = D: the same full
    // rotation as transferlab's default; otherwise pcaDims is the reference's n_dims.
    const pcaDims = e.d <= 32 && e.reference_n_dims === e.d ? undefined : e.reference_n_dims;
    close(await parc(f, y, pcaDims === undefined ? {} : { pcaDims }), e.parc, 'with PCA');
    close(await parc(f, y, { pcaDims: null }), e.parc_no_pca, 'without PCA');
    if (e.d <= 32 && pcaDims === undefined)
      assert.ok(
        Math.abs(e.parc - e.parc_no_pca) > 1,
        'the rotation matters here, so skipping PCA would be wrong',
      );
  });
}

test('PARC rejects a pcaDims that is not a positive integer', async () => {
  const { f, y } = load('d12');
  await assert.rejects(parc(f, y, { pcaDims: 0 }), /parc: pcaDims must be a positive integer/);
  await assert.rejects(parc(f, y, { pcaDims: 2.5 }), /parc: pcaDims must be a positive integer/);
});

test("PCA scores equal scikit-learn's, signs included (svd_flip), for N > D and N < D", async () => {
  for (const [name, e] of Object.entries(expected.cases)) {
    const k = (e as { sklearn_pca_components?: number }).sklearn_pca_components;
    if (k === undefined) continue;
    const { f } = load(name);
    const want = readNpy(join(DIR, `${name}_sklearn_pca${k}.npy`));
    const got = (await pca(f, k)).scores;
    assert.deepEqual([got.rows, got.cols], want.shape);
    const w = want.data as Float64Array;
    let scale = 0;
    for (const v of w) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < w.length; i++)
      assert.ok(
        Math.abs(got.data[i] - w[i]) <= 1e-8 * scale,
        `${name}: score ${i}: ${got.data[i]} vs ${w[i]}`,
      );
  }
});
