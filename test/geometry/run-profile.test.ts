/**
 * The profile on a small pre-trained model: a 3-layer GPT-2 pre-trained here on the grid-world text task, then
 * LoRA-fine-tuned, and the same test questions read 0-shot, 2-shot (turns the task was built with) and by the
 * fine-tuned model. `tlab geometry run` writes ID vs layer, ARI vs layer for two label sets (the answer and the
 * question's row), overlap vs layer and a CKA heatmap; the checks are the outputs' structure, a few exact
 * relations (χ of a condition with itself is 1, the 0-shot and 2-shot prompts differ), and bad configs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadGeometryConfig, parseGeometryConfig } from '../../src/geometry/config.ts';
import { openRepresentations } from '../../src/geometry/extract.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-geometry-run-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

test('geometry run: ID and ARI profiles of a pre-trained GPT-2 for 0-shot, 2-shot and LoRA-fine-tuned conditions', () => {
  writeFileSync(
    join(root, 'tasks.yaml'),
    'tasks:\n  grid:\n    dataset: synthetic:grid-world\n    generator: { splits: { train: 200, test: 50 }, modality: text, rows: 3, cols: 3, vocab_subset_size: 4, questions_per_image: 3 }\n    few_shot: { k: 2 }\n',
  );
  assert.equal(
    tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']).status,
    0,
  );
  const common = `out: ${root}\nseed: 0\ndata: { task: ${join(root, 'tasks', 'grid')}, seq_len: 192 }\n`;
  writeFileSync(
    join(root, 'pre.yaml'),
    `name: base\n${common}tokenizer: { build: word }\nmodel: { config: { model_type: gpt2, n_layer: 3, n_embd: 48, n_head: 4 } }\ntraining: { max_steps: 80, batch_size: 16, lr: 0.003, warmup_steps: 10 }\n`,
  );
  const pre = tlab(['pretrain', join(root, 'pre.yaml'), '--quiet']);
  assert.equal(pre.status, 0, pre.stderr);
  writeFileSync(
    join(root, 'ft.yaml'),
    `name: lora\n${common}model: { from: ${join(root, 'models', 'base')} }\nstrategy: { kind: lora, lora: { r: 4, alpha: 8, targets: [c_attn] } }\ntraining: { max_steps: 20, batch_size: 16, lr: 0.01 }\n`,
  );
  const ft = tlab(['finetune', join(root, 'ft.yaml'), '--quiet']);
  assert.equal(ft.status, 0, ft.stderr);

  writeFileSync(
    join(root, 'geometry.yaml'),
    `name: grid-icl-vs-ft
task: tasks/grid
split: test
states: norm-input
labels: [label, field:row]
analysis: { maxk: 40, range_max: 32, id_scale: 8, density_k: 8 }
conditions:
  - { name: base-0shot, model: models/base, shots: 0 }
  - { name: base-2shot, model: models/base, shots: 2 }
  - { name: lora-0shot, model: models/lora, shots: 0 }
overlap: { k: 10, pairs: [[base-0shot, base-2shot], [base-0shot, lora-0shot], [base-0shot, base-0shot]] }
cka: { pairs: [[base-0shot, lora-0shot]] }
probes: { labels: [label], folds: 0, c: 1 }
`,
  );
  const r = tlab(['geometry', 'run', join(root, 'geometry.yaml'), '--out', root, '--quiet', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(summary.conditions, ['base-0shot', 'base-2shot', 'lora-0shot']);
  for (const name of summary.conditions) {
    const rows = summary.profiles[name];
    // layer 0 at the last token is the same token for every prompt: all duplicates, left out of the profile
    assert.deepEqual(
      rows.map((p: { layer: number }) => p.layer),
      [1, 2, 3],
      name,
    );
    for (const p of rows) {
      assert.ok(p.id > 0.5 && p.id < 48, `${name} layer ${p.layer} ID ${p.id}`);
      for (const label of ['label', 'row']) {
        const s = p.labels[label];
        assert.ok(
          s.ari >= -0.5 && s.ari <= 1 && s.labelOverlap >= 0 && s.labelOverlap <= 1,
          JSON.stringify(s),
        );
      }
    }
    const rep = openRepresentations(join(root, 'geometry', 'representations', name));
    assert.equal(rep.manifest.n, 150);
    assert.equal(rep.manifest.states, 'norm-input');
    assert.equal(rep.manifest.layers[0].duplicates, 149);
  }
  const self = summary.overlap.find((o: { pair: string[] }) => o.pair[1] === 'base-0shot');
  for (const l of self.layers) assert.equal(l.value, 1);
  const icl = summary.overlap.find((o: { pair: string[] }) => o.pair[1] === 'base-2shot');
  assert.ok(
    icl.layers.some((l: { value: number }) => l.value < 1),
    'few-shot prompts move the neighbourhoods',
  );
  assert.equal(summary.cka[0].values.length, 3);
  for (const row of summary.cka[0].values) for (const v of row) assert.ok(v > 0 && v <= 1 + 1e-12);
  assert.equal(summary.probes['base-0shot'].length, 3);
  for (const f of [
    'id_vs_layer',
    'ari_vs_layer_label',
    'ari_vs_layer_row',
    'overlap_vs_layer',
    'cka_base-0shot__lora-0shot',
  ])
    for (const ext of ['svg', 'png'])
      assert.ok(existsSync(join(root, 'geometry', 'plots', `${f}.${ext}`)), `${f}.${ext}`);
  const saved = JSON.parse(readFileSync(join(root, 'geometry', 'profile_base-2shot.json'), 'utf8'));
  assert.equal(saved.manifest.shots, 2);

  // a second run reuses the extracted representations (same fingerprint)
  const before = readFileSync(
    join(root, 'geometry', 'representations', 'base-0shot', 'metadata.json'),
    'utf8',
  );
  const again = tlab(['geometry', 'run', join(root, 'geometry.yaml'), '--out', root, '--quiet']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(
    readFileSync(join(root, 'geometry', 'representations', 'base-0shot', 'metadata.json'), 'utf8'),
    before,
  );
});

test('geometry config errors name the field, with a did-you-mean for unknown keys', () => {
  assert.throws(
    () => parseGeometryConfig({ task: 't', conditions: [{ name: 'a', model: 'm' }], analysys: {} }, 'g.yaml'),
    /g\.yaml: \(top level\): unknown field 'analysys' \(did you mean 'analysis'\?\)/,
  );
  assert.throws(
    () => parseGeometryConfig({ task: 't', conditions: [{ name: 'a', model: 'm', shot: 2 }] }, 'g.yaml'),
    /conditions\.0: unknown field 'shot' \(did you mean 'shots'\?\)/,
  );
  assert.throws(
    () =>
      parseGeometryConfig(
        { task: 't', conditions: [{ name: 'a', model: 'm' }], cka: { pairs: [['a', 'b']] } },
        'g.yaml',
      ),
    /cka\.pairs\.0\.1: no condition 'b'/,
  );
  writeFileSync(join(root, 'bad.yaml'), 'task: t\nconditions: []\n');
  assert.throws(() => loadGeometryConfig(join(root, 'bad.yaml')), /bad\.yaml: conditions: /);
});
