/**
 * LoCoMoSeT's setting as one experiment run by `tlab run`: two small ViT image classifiers pre-trained on two
 * image-label source tasks (1×1 grid worlds whose label is the cell's shape, each with its own shapes), fine-tuned
 * on a third with a new head for its labels, evaluated through the classifier backend on every task, and
 * LogME / LEEP / NCE (the latter two on the source heads' probabilities) correlated with the fine-tuned accuracy.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import type { Plan } from '../../src/lab/plan/types.ts';
import type { RunRecord } from '../../src/lab/store.ts';
import { readNpy } from '../../src/metrics/io/npy.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-lab-classifiers-'));
after(() => rmSync(root, { recursive: true, force: true }));
const out = join(root, 'study');

const shapes = (vocab: string[]) => ({
  dataset: 'synthetic:grid-world',
  generator: {
    splits: { train: 48, test: 16 },
    rows: 1,
    cols: 1,
    vocab,
    vocab_subset_size: vocab.length,
    questions_per_image: 1,
    modality: 'image',
    cell_size: 16,
  },
  dedupe: false,
});
const vit = (task: string, hidden: number) => ({
  pretrain: {
    task,
    objective: 'image-classifier',
    config: {
      model_type: 'vit',
      hidden_size: hidden,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 2 * hidden,
      image_size: 16,
      patch_size: 8,
    },
    training: { max_steps: 40, batch_size: 16, lr: 0.001 },
  },
});

const SOURCE_A = ['circle', 'square', 'star', 'triangle'];
const TARGET = ['circle', 'heart', 'hexagon', 'square'];

let plan: Plan;
before(() => {
  const file = join(root, 'experiment.yaml');
  writeFileSync(
    file,
    YAML.stringify({
      name: 'classifiers',
      out,
      tasks: {
        src_a: shapes(['circle', 'square', 'triangle', 'star']),
        src_b: shapes(['cross', 'diamond', 'hexagon', 'heart']),
        target: shapes(['circle', 'square', 'hexagon', 'heart']),
      },
      models: { vit_a: vit('src_a', 32), vit_b: vit('src_b', 24) },
      finetuning: {
        tasks: ['target'],
        strategies: ['full'],
        training: { max_steps: 40, batch_size: 16, lr: 0.001 },
        // The new head starts from random: it learns faster than the pre-trained body.
        learning_rates: { head: 0.01 },
      },
      evals: { bootstrap: 0 },
      metrics: { estimators: ['logme', 'leep', 'nce'] },
      report: false,
    }),
  );
  const r = spawnSync(process.execPath, ['bin/tlab.js', 'run', file, '--quiet'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8'));
});

describe('classifier study', () => {
  test('the plan pre-trains, fine-tunes, evaluates and scores the classifiers; every run is done', () => {
    const count = (stage: string) => plan.runs.filter((r) => r.stage === stage).length;
    assert.deepEqual(
      ['pretrain', 'finetune', 'eval', 'features', 'metrics', 'summary'].map(count),
      [2, 2, 4, 2, 2, 1],
    );
    const records = readdirSync(join(out, 'runs')).map(
      (id) => JSON.parse(readFileSync(join(out, 'runs', id, 'run.json'), 'utf8')) as RunRecord,
    );
    assert.ok(
      records.every((r) => r.state === 'done'),
      records
        .filter((r) => r.state !== 'done')
        .map((r) => `${r.id}: ${r.state}`)
        .join('; '),
    );
  });

  test('the fine-tuned classifiers have the target’s labels and beat chance on it; the grid grades every task', () => {
    const grid = JSON.parse(readFileSync(join(out, 'eval_grid.json'), 'utf8'));
    for (const m of ['vit_a', 'vit_b']) {
      const name = `${m}__target__full__s0`;
      const config = JSON.parse(
        readFileSync(join(out, 'finetuned_checkpoints', name, 'config.json'), 'utf8'),
      );
      assert.deepEqual(Object.values(config.id2label), TARGET);
      const cell = grid.cells.find(
        (c: { model: string; task: string }) => c.model === name && c.task === 'target',
      );
      assert.equal(cell.status, 'done');
      assert.equal(cell.topline_metric, 'exact_match');
      assert.ok(cell.score >= 0.6, `${name} on target: ${cell.score} (chance about 0.25)`);
    }
    const zeroShot = grid.cells.find(
      (c: { model: string; task: string }) => c.model === 'vit_a' && c.task === 'src_a',
    );
    assert.ok(zeroShot.score >= 0.6, `vit_a on its own source task: ${zeroShot.score}`);
    assert.equal(grid.cells.length, 12, '4 models × 3 tasks');
  });

  test('features carry the source heads’ probabilities; LogME, LEEP and NCE are scored and correlated', () => {
    const features = JSON.parse(
      readFileSync(join(out, 'features', 'vit_a', 'target', 'features.json'), 'utf8'),
    );
    assert.equal(features.source_probs.label_space.kind, 'classifier-head');
    assert.deepEqual(features.source_probs.label_space.labels, SOURCE_A);
    const theta = readNpy(join(out, 'features', 'vit_a', 'target', 'source_probs.npy'));
    assert.deepEqual(theta.shape, [features.n, 4]);
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
    const header = csv[0].split(',');
    const rows = csv.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
    const estimator = (metric: string) => rows.filter((r) => r.kind === 'estimator' && r.metric === metric);
    for (const metric of ['logme', 'leep', 'nce']) {
      assert.deepEqual(
        estimator(metric)
          .map((r) => r.model)
          .sort(),
        ['vit_a', 'vit_b'],
        metric,
      );
      for (const r of estimator(metric)) assert.ok(Number.isFinite(Number(r.value)), `${metric} ${r.model}`);
    }
    for (const r of [...estimator('leep'), ...estimator('nce')])
      assert.ok(Number(r.value) <= 0, `${r.metric} ≤ 0`);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.actual_scores.length, 2, 'each zoo model fine-tuned on the target');
    assert.ok(existsSync(join(out, 'metrics', 'results', 'vit_a', 'target', 'leep')));
  });
});
