/**
 * Source-model probabilities for LEEP/NCE (issue 10 #4) against a direct softmax of logits computed in the test,
 * in float64, from the features and weights on disk: a ViT classifier's head softmax(CLS·Wᵀ + b) over its
 * labels, a sequence classifier's softmax(h_last·Wᵀ), a GPT-2 LM's next-token distribution softmax(h_last·wteᵀ)
 * (GPT-2 ties its LM head to the token embeddings) over the vocabulary, and the top-k label space (the k tokens of
 * highest mean probability, rows renormalised). `tlab metrics features` writes source_probs.npy and says the label
 * space in features.json; `tlab metrics score --metric leep` on them equals LEEP computed from its formula here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extractTaskFeatures } from '../../src/eval/task-features.ts';
import { readNpy } from '../../src/metrics/io/npy.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { type ClassifierFixture, classifierFixture } from './classifier-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-source-probs-'));
after(() => rmSync(root, { recursive: true, force: true }));
let fx: ClassifierFixture;
before(async () => {
  fx = await classifierFixture(root);
});

/** softmax(F·Wᵀ + b) per row, float64. */
function softmaxOfLinear(f: Float32Array, d: number, w: Float32Array, b: Float32Array | null): number[][] {
  const c = w.length / d;
  return Array.from({ length: f.length / d }, (_, i) => {
    const z = Array.from({ length: c }, (_, k) => {
      let s = b ? b[k] : 0;
      for (let j = 0; j < d; j++) s += f[i * d + j] * w[k * d + j];
      return s;
    });
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const total = e.reduce((a, x) => a + x, 0);
    return e.map((v) => v / total);
  });
}

function assertClose(got: Float64Array, cols: number, want: number[][], tol: number, what: string): void {
  assert.equal(got.length, want.length * cols, `${what}: shape`);
  let worst = 0;
  want.forEach((row, i) => {
    row.forEach((v, k) => {
      worst = Math.max(worst, Math.abs(got[i * cols + k] - v));
    });
  });
  assert.ok(worst < tol, `${what}: largest difference ${worst}`);
}

const weight = (dir: string, name: string) => loadModelFolder(dir).weights.get(name)!.data as Float32Array;

describe('source probabilities', () => {
  test('an image classifier: its head’s softmax over its own labels', async () => {
    const r = await extractTaskFeatures(loadModelFolder(fx.vit), fx.imageTask, {
      split: 'test',
      pooling: 'pooled',
      sourceProbs: { mode: 'auto' },
    });
    const p = r.sourceProbs!;
    assert.equal(p.labelSpace.kind, 'classifier-head');
    assert.deepEqual(p.labelSpace.labels, ['circle', 'square', 'star', 'triangle']);
    const want = softmaxOfLinear(
      r.features.data as Float32Array,
      32,
      weight(fx.vit, 'classifier.weight'),
      weight(fx.vit, 'classifier.bias'),
    );
    assertClose(p.probs, p.cols, want, 1e-5, 'ViT head');
  });

  test('a sequence classifier: its score head’s softmax on the prompt’s last token', async () => {
    const r = await extractTaskFeatures(loadModelFolder(fx.sequence), fx.textTask, {
      split: 'test',
      pooling: 'last',
      sourceProbs: { mode: 'head' },
    });
    const p = r.sourceProbs!;
    assert.equal(p.cols, 4);
    assertClose(
      p.probs,
      p.cols,
      softmaxOfLinear(r.features.data as Float32Array, 32, weight(fx.sequence, 'score.weight'), null),
      1e-5,
      'score head',
    );
  });

  test('a decoder: the next-token distribution at the last prompt token, over the vocabulary or top-k', async () => {
    const folder = loadModelFolder(fx.lm);
    const vocab = await extractTaskFeatures(folder, fx.textTask, {
      split: 'test',
      pooling: 'last',
      sourceProbs: { mode: 'auto' },
    });
    const v = folder.tokenizer!.vocabSize;
    const p = vocab.sourceProbs!;
    assert.equal(p.labelSpace.kind, 'vocabulary', 'auto: a small vocabulary is used whole');
    assert.equal(p.cols, v);
    const want = softmaxOfLinear(vocab.features.data as Float32Array, 32, weight(fx.lm, 'wte.weight'), null);
    assertClose(p.probs, v, want, 1e-5, 'next-token distribution');

    const k = 5;
    const top = await extractTaskFeatures(folder, fx.textTask, {
      split: 'test',
      pooling: 'last',
      sourceProbs: { mode: 'top-k', topK: k },
    });
    const t = top.sourceProbs!;
    const mean = Array.from({ length: v }, (_, j) => want.reduce((s, row) => s + row[j], 0) / want.length);
    const ids = mean
      .map((m, j) => [m, j])
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, k)
      .map(([, j]) => j);
    assert.deepEqual(t.labelSpace.token_ids, ids);
    assert.deepEqual(
      t.labelSpace.labels,
      ids.map((id) => folder.tokenizer!.idToToken(id)),
    );
    const renormalised = want.map((row) => {
      const s = ids.reduce((a, j) => a + row[j], 0);
      return ids.map((j) => row[j] / s);
    });
    assertClose(t.probs, k, renormalised, 1e-5, 'top-k');
    await assert.rejects(
      extractTaskFeatures(folder, fx.textTask, {
        split: 'test',
        pooling: 'last',
        sourceProbs: { mode: 'head' },
      }),
      /source probabilities 'head' need a classifier; this is a causal-lm \(use 'vocab' or 'top-k'/,
    );
  });

  test('tlab metrics features writes source_probs.npy with its label space; LEEP reads them', () => {
    const out = join(root, 'features-vit');
    const tlab = (args: string[]) =>
      spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });
    const r = tlab([
      'metrics',
      'features',
      fx.vit,
      fx.imageTask,
      '--split',
      'test',
      '--pooling',
      'pooled',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.source_probs.label_space.kind, 'classifier-head');
    const saved = JSON.parse(readFileSync(join(out, 'features.json'), 'utf8'));
    assert.deepEqual(saved.source_probs.label_space.labels, ['circle', 'square', 'star', 'triangle']);
    const theta = readNpy(join(out, 'source_probs.npy'));
    assert.deepEqual(theta.shape, [summary.n, 4]);
    const y = Array.from(readNpy(join(out, 'labels.npy')).data as Int32Array, Number);
    // LEEP = mean_i ln Σ_z P̂(y_i|z) θ_iz, P̂(y,z) = (1/N) Σ_{i: y_i=y} θ_iz (Nguyen et al. 2020).
    const th = theta.data as Float64Array;
    const n = y.length;
    const cs = 4;
    const joint = new Map<string, number>();
    const pz = new Array(cs).fill(0);
    for (let i = 0; i < n; i++)
      for (let z = 0; z < cs; z++) {
        joint.set(`${y[i]},${z}`, (joint.get(`${y[i]},${z}`) ?? 0) + th[i * cs + z] / n);
        pz[z] += th[i * cs + z] / n;
      }
    let leep = 0;
    for (let i = 0; i < n; i++) {
      let eep = 0;
      for (let z = 0; z < cs; z++) eep += th[i * cs + z] * ((joint.get(`${y[i]},${z}`) ?? 0) / pz[z]);
      leep += Math.log(eep) / n;
    }
    const score = tlab([
      'metrics',
      'score',
      '--metric',
      'leep',
      '--features',
      join(out, 'features.safetensors'),
      '--labels',
      join(out, 'labels.npy'),
      '--source-probs',
      join(out, 'source_probs.npy'),
      '--json',
    ]);
    assert.equal(score.status, 0, score.stderr);
    const got = JSON.parse(score.stdout).score;
    assert.ok(Math.abs(got - leep) < 1e-9, `leep ${got} vs ${leep}`);
    assert.ok(
      got > -Math.log(4) + 0.3,
      `a trained head predicts the target classes: LEEP ${got} (−ln 4 = ${-Math.log(4)})`,
    );
    const none = tlab([
      'metrics',
      'features',
      fx.vit,
      fx.imageTask,
      '--split',
      'test',
      '--pooling',
      'pooled',
      '--source-probs',
      'none',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(none.status, 0, none.stderr);
    assert.equal(JSON.parse(none.stdout).source_probs.file, null);
  });
});
