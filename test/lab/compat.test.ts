/**
 * Configs users arrive with: the llama-cookbook transferability tool's config.yaml (tasks as top-level keys beside
 * finetuning and evals, component flags, LoRA ranks, torchtune and vLLM keys) plans and runs unchanged; a LoCoMoSeT
 * top-level config imports as an experiment YAML; task axes expand into one task per value.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import YAML from 'yaml';
import { parseExperiment } from '../../src/lab/config/load.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-lab-compat-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tlab = (args: string[]) => spawnSync(process.execPath, ['bin/tlab.js', ...args], { encoding: 'utf8' });

const shapes = (train: number) => ({
  dataset: 'synthetic:grid-world',
  generator: {
    splits: { train, test: 4 },
    modality: 'image',
    rows: 1,
    cols: 1,
    vocab_subset_size: 3,
    questions_per_image: 1,
    cell_size: 16,
  },
  user_prompt: 'Which shape?',
  dedupe: false,
});

describe('configs of other tools', () => {
  test("the llama-cookbook's config.yaml plans and runs unchanged on a synthetic dataset", () => {
    // A tiny LLaVA-style base model, as the cookbook's finetuning.model_path.
    writeFileSync(join(root, 'tasks.yaml'), YAML.stringify({ tasks: { src: shapes(32) } }));
    let r = tlab(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'data'), '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    writeFileSync(
      join(root, 'vlm.yaml'),
      YAML.stringify({
        name: 'vlm',
        out: root,
        data: { task: join(root, 'data', 'src'), seq_len: 64 },
        tokenizer: { build: 'word' },
        model: {
          config: {
            model_type: 'llava',
            mm_projector_type: 'linear',
            vision_feature_select_strategy: 'full',
            vision_feature_layer: -1,
            vision_config: {
              model_type: 'vit',
              hidden_size: 16,
              num_hidden_layers: 1,
              num_attention_heads: 2,
              intermediate_size: 32,
              image_size: 16,
              patch_size: 8,
            },
            text_config: { model_type: 'gpt2', n_embd: 16, n_layer: 1, n_head: 2 },
          },
        },
        training: { max_steps: 3, batch_size: 8 },
      }),
    );
    r = tlab(['pretrain', join(root, 'vlm.yaml'), '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    const dir = join(root, 'study');
    const config = {
      task1: shapes(24),
      task2: { ...shapes(16), generator: { ...shapes(16).generator, vocab_subset_size: 2 } },
      finetuning: {
        model_path: join(root, 'models', 'vlm'),
        tokenizer_path: '/path/to/tokenizer',
        fft_torchtune_config: 'transferability/finetune/8b_full.yaml',
        lora_torchtune_config: 'transferability/finetune/8b_lora.yaml',
        epochs: 1,
        batch_size: 8,
        ngpu: 4,
        distributed: true,
        fusion: true,
        'fusion+encoder': false,
        'fusion+decoder': false,
        'fusion+encoder+decoder': true,
        lora_ranks: [2],
      },
      evals: {
        nb_eval_samples: 4,
        checkpoint_to_eval: -1,
        model_server_args: {
          tensor_parallel_size: 2,
          max_model_len: 8192,
          max_num_seqs: 128,
          enforce_eager: true,
        },
        inference_params: { temperature: 0, top_p: 1.0, max_completion_tokens: 4, seed: 42 },
      },
    };
    const file = join(root, 'config.yaml');
    writeFileSync(file, YAML.stringify(config));
    r = tlab(['validate', file]);
    assert.equal(r.status, 0, r.stderr);
    // Two tasks × (two component flags + one LoRA rank) fine-tuning runs; the base and six models evaluated.
    assert.match(
      r.stdout,
      /valid \(llama-cookbook layout\); \d+ runs: 2 data, 6 finetune, 7 eval, 1 summary/,
    );
    assert.match(r.stdout, /finetuning\.fft_torchtune_config: used by the external executor/);
    assert.match(r.stdout, /evals\.model_server_args: used by the external executor/);
    r = tlab(['run', file, '--out', dir, '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(readFileSync(join(dir, 'eval_grid_results.json'), 'utf8'));
    assert.equal(list.length, 14, '7 models × 2 tasks, in the cookbook list form');
    assert.ok(
      list.every(
        (x: { topline_metric: string; score: number }) => x.topline_metric === 'exact_match' && x.score >= 0,
      ),
    );
    for (const f of [
      'formatted_datasets/task1/manifest.json',
      'finetuned_checkpoints',
      'finetune_logs',
      'grader_logs',
      'transferability_results.csv',
    ])
      assert.ok(existsSync(join(dir, f)), f);
    // The flags are mapped with every component set explicitly: 'fusion' trains the projector only.
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
    const fusion = plan.runs.find((x: { name: string }) => x.name.endsWith('__task1__comp-fusion__s0'));
    assert.deepEqual(fusion.config.strategy.components, {
      projector: 'full',
      encoder: 'frozen',
      decoder: 'frozen',
    });
    const all = plan.runs.find((x: { name: string }) =>
      x.name.endsWith('__task1__comp-fusion-encoder-decoder__s0'),
    );
    assert.deepEqual(all.config.strategy.components, { projector: 'full', encoder: 'full', decoder: 'full' });
  });

  test('a LoCoMoSeT top-level config imports as an experiment YAML', () => {
    const file = join(root, 'locomoset.yaml');
    writeFileSync(
      file,
      YAML.stringify({
        models: ['google/vit-base-patch16-224', 'facebook/deit-tiny-patch16-224'],
        dataset_names: ['cifar10'],
        random_states: [42, 43],
        metrics: ['LogME', 'renggli', 'n_pars'],
        n_samples: [50, 500],
        training_args: { num_train_epochs: 2, learning_rate: 5e-5, per_device_train_batch_size: 16 },
        dataset_args: { train_split: 'train', val_size: 0.1, test_size: 0.2 },
        wandb_args: { entity: 'x', project: 'y' },
        use_bask: true,
        caches: { datasets: '/c' },
      }),
    );
    const r = tlab(['import', 'locomoset', file, '--out', join(root, 'imported.yaml')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /metrics: 'renggli' has no estimator here/);
    assert.match(r.stderr, /wandb_args: has no counterpart/);
    const doc = YAML.parse(readFileSync(join(root, 'imported.yaml'), 'utf8'));
    assert.deepEqual(Object.keys(doc.models), ['vit-base-patch16-224', 'deit-tiny-patch16-224']);
    assert.deepEqual(doc.tasks.cifar10.resplit, { train: 0.7, validation: 0.1, test: 0.2 });
    assert.deepEqual(doc.metrics, {
      estimators: ['logme'],
      target_tasks: ['cifar10'],
      n_samples: [50, 500],
      seeds: [42, 43],
    });
    assert.deepEqual(doc.finetuning, {
      tasks: ['cifar10'],
      seeds: [42, 43],
      training: { epochs: 2, lr: 5e-5, batch_size: 16 },
    });
    // With the models pointed at local folders it is a valid experiment.
    for (const [k, m] of Object.entries(doc.models) as [string, { path: string }][]) {
      m.path = join(root, k);
      cpSync('test/fixtures/models/vit_cls', m.path, { recursive: true });
    }
    writeFileSync(join(root, 'imported.yaml'), YAML.stringify(doc));
    const v = tlab(['validate', join(root, 'imported.yaml')]);
    assert.equal(v.status, 0, v.stderr);
  });

  test('task axes: one task per value, and task lists that name the axis task mean all of them', () => {
    const loaded = parseExperiment(
      {
        name: 'axes',
        tasks: {
          a: {
            ...shapes(8),
            axes: { 'generator.questions_per_image': [1], 'generator.vocab_subset_size': [2, 3] },
          },
          b: shapes(8),
        },
        models: { m: { path: 'test/fixtures/models/gpt2_lm' } },
        finetuning: { tasks: ['a'], training: { max_steps: 1 } },
      },
      join(root, 'axes.yaml'),
    );
    assert.deepEqual(Object.keys(loaded.config.tasks), [
      'a__questions_per_image-1__vocab_subset_size-2',
      'a__questions_per_image-1__vocab_subset_size-3',
      'b',
    ]);
    assert.equal(
      (
        loaded.config.tasks['a__questions_per_image-1__vocab_subset_size-3'].generator as {
          vocab_subset_size: number;
        }
      ).vocab_subset_size,
      3,
    );
    assert.deepEqual(loaded.config.finetuning?.tasks, [
      'a__questions_per_image-1__vocab_subset_size-2',
      'a__questions_per_image-1__vocab_subset_size-3',
    ]);
    assert.throws(
      () =>
        parseExperiment(
          { name: 'x', tasks: { a: { ...shapes(8), axes: { seed: [] } } }, models: {} },
          'f.yaml',
        ),
      /f\.yaml: tasks\.a\.axes\.seed: expected a non-empty list of values/,
    );
  });
});
