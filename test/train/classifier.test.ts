/**
 * Classifier training (objective image-classifier / sequence-classifier): a tiny ViT learns the shape in 1×1
 * grid-world images far above chance; fine-tuning its folder on another label set gets a new head for those labels
 * (the body is the folder's: with the encoder frozen it stays bit for bit), a folder naming the same classes in
 * another order gets its head rows reordered; LoRA trains adapters and the head; a run stopped mid-way resumes to
 * the uninterrupted run's losses and weights exactly; a GPT-2 sequence classifier learns a text label task.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildTaskDataset } from '../../src/data/build/build-task.ts';
import { TaskConfigSchema } from '../../src/data/config.ts';
import { loadModelFolder, saveModelFolder } from '../../src/models/hf/model-folder.ts';
import { folderClassifier } from '../../src/train/classifier-model.ts';
import { parseTrainConfig } from '../../src/train/config.ts';
import type { ClassifierRunSummary } from '../../src/train/run-classifier-training.ts';
import { runTraining } from '../../src/train/run-training.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-classifier-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** 1×1 grid worlds: the only cell's shape is the label (each shape has its own colour). */
async function shapesTask(
  name: string,
  vocab: string[],
  modality: 'image' | 'text',
  train = 64,
): Promise<string> {
  const task = TaskConfigSchema.parse({
    dataset: 'synthetic:grid-world',
    generator: {
      splits: { train, validation: 32 },
      rows: 1,
      cols: 1,
      vocab,
      vocab_subset_size: vocab.length,
      questions_per_image: 1,
      modality,
      cell_size: 16,
    },
    dedupe: false,
  });
  const r = await buildTaskDataset(name, task, {
    outDir: join(root, 'tasks'),
    baseDir: root,
    file: 'test',
    quiet: true,
  });
  return r.dir;
}

const VIT = {
  model_type: 'vit',
  hidden_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 64,
  image_size: 16,
  patch_size: 8,
};

async function run(doc: Record<string, unknown>, options: { stopAfter?: number } = {}) {
  const config = parseTrainConfig({ out: root, seed: 1, ...doc }, 'test.yaml');
  return (await runTraining(config, {
    configFile: 'test.yaml',
    quiet: true,
    ...options,
  })) as ClassifierRunSummary;
}

const training = (steps: number, extra: Record<string, unknown> = {}) => ({
  max_steps: steps,
  batch_size: 16,
  lr: 0.003,
  eval_every: steps,
  eval_batches: 2,
  ...extra,
});

const floats = (dir: string, name: string) =>
  Array.from(loadModelFolder(dir).weights.get(name)!.data as Float32Array);

let source: string;
let target: string;
let base: ClassifierRunSummary;

before(async () => {
  source = await shapesTask('shapes4', ['circle', 'square', 'triangle', 'star'], 'image');
  target = await shapesTask('shapes3', ['hexagon', 'heart', 'cross'], 'image');
  base = await run({
    name: 'vit-base',
    objective: 'image-classifier',
    data: { task: source },
    model: { config: VIT },
    training: training(40, { lr: 0.001 }),
  });
});

describe('classifier training', () => {
  test('a tiny ViT learns the 1×1 grid-world shape far above chance; the folder says its classes', () => {
    assert.equal(base.steps, 40);
    assert.equal(base.head, 'scratch');
    assert.deepEqual(base.labels, ['circle', 'square', 'star', 'triangle']);
    assert.ok(base.chance !== null && base.chance < 0.5, `chance ${base.chance}`);
    assert.ok(base.eval!.accuracy >= 0.9, `eval accuracy ${base.eval!.accuracy} (chance ${base.chance})`);
    const config = JSON.parse(readFileSync(join(base.paths.model, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['ViTForImageClassification']);
    assert.deepEqual(config.id2label, { 0: 'circle', 1: 'square', 2: 'star', 3: 'triangle' });
    assert.deepEqual(config.label2id, { circle: 0, square: 1, star: 2, triangle: 3 });
    const processor = JSON.parse(readFileSync(join(base.paths.model, 'preprocessor_config.json'), 'utf8'));
    assert.deepEqual(processor.size, { height: 16, width: 16 });
    const log = readFileSync(join(base.paths.logs, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const evalRow = log.find((r) => r.split === 'eval' && r.step === 40);
    assert.equal(evalRow.accuracy, base.eval!.accuracy, 'eval accuracy logged in metrics.jsonl');
    assert.ok(log.some((r) => r.split === 'train' && typeof r.accuracy === 'number'));
    assert.equal(loadModelFolder(base.paths.model).kind, 'image-classifier');
  });

  test('fine-tuning on another label set initialises a new head for it; the body is the folder’s', async () => {
    const probe = await run({
      name: 'vit-probe',
      objective: 'image-classifier',
      data: { task: target },
      model: { from: base.paths.model },
      strategy: { kind: 'components', components: { encoder: 'frozen', head: 'full' } },
      training: training(30, { lr: 0.01 }),
    });
    assert.equal(probe.head, 'new');
    assert.deepEqual(probe.labels, ['cross', 'heart', 'hexagon']);
    const tuned = loadModelFolder(probe.paths.model);
    assert.deepEqual(tuned.weights.get('classifier.weight')!.shape, [3, 32]);
    assert.deepEqual(tuned.config.id2label, { 0: 'cross', 1: 'heart', 2: 'hexagon' });
    for (const name of ['vit.embeddings.cls_token', 'vit.encoder.layer.0.attention.attention.query.weight'])
      assert.deepEqual(floats(probe.paths.model, name), floats(base.paths.model, name), `${name} frozen`);
    assert.ok(probe.eval!.accuracy > probe.chance! + 0.2, `linear probe accuracy ${probe.eval!.accuracy}`);
  });

  test('a folder naming the same classes in another order keeps its head with the rows reordered', () => {
    const folder = loadModelFolder(base.paths.model);
    const reversed = ['triangle', 'star', 'square', 'circle'];
    const dir = join(root, 'reversed');
    saveModelFolder(dir, folder, folder.weights, { labels: reversed, filesFrom: base.paths.model });
    const same = folderClassifier('image-classifier', base.paths.model, base.labels, 'test');
    assert.equal(same.head, 'kept');
    const p = folderClassifier('image-classifier', dir, base.labels, 'test');
    assert.equal(p.head, 'reordered');
    const w = folder.weights.get('classifier.weight')!.data as Float32Array;
    const got = p.weights!.get('classifier.weight')!.data as Float32Array;
    const d = 32;
    // Row i of the task's order is the folder's row for that class name.
    base.labels.forEach((label, i) => {
      const from = reversed.indexOf(label);
      assert.deepEqual(
        Array.from(got.subarray(i * d, (i + 1) * d)),
        Array.from(w.subarray(from * d, (from + 1) * d)),
      );
    });
    const b = p.weights!.get('classifier.bias')!.data as Float32Array;
    const b0 = folder.weights.get('classifier.bias')!.data as Float32Array;
    assert.deepEqual(Array.from(b), [b0[3], b0[2], b0[1], b0[0]]);
    assert.equal(folderClassifier('image-classifier', dir, ['a', 'b', 'c', 'd'], 'test').head, 'new');
  });

  test('LoRA trains the adapted projections and the head, nothing else', async () => {
    const lora = await run({
      name: 'vit-lora',
      objective: 'image-classifier',
      data: { task: target },
      model: { from: base.paths.model },
      strategy: { kind: 'lora', lora: { r: 2, alpha: 4, targets: ['query', 'value'] } },
      training: training(8),
    });
    const changed = (name: string) =>
      floats(lora.paths.model, name).some((v, i) => v !== floats(base.paths.model, name)[i]);
    const layer = 'vit.encoder.layer.0.attention.attention';
    assert.ok(
      changed(`${layer}.query.weight`) && changed(`${layer}.value.weight`),
      'LoRA merged into query/value',
    );
    assert.ok(!changed(`${layer}.key.weight`) && !changed('vit.embeddings.cls_token'), 'the rest is frozen');
    assert.equal(loadModelFolder(lora.paths.model).weights.get('classifier.weight')!.shape[0], 3);
  });

  test('stopped after 6 steps and resumed, a run ends with the uninterrupted run’s losses and weights', async () => {
    const doc = (name: string) => ({
      name,
      objective: 'image-classifier',
      data: { task: target },
      model: { from: base.paths.model },
      training: training(12, { save_every: 4, eval_every: 4 }),
    });
    const full = await run(doc('resume-a'));
    const first = await run(doc('resume-b'), { stopAfter: 6 });
    assert.equal(first.steps, 6);
    assert.ok(!existsSync(first.paths.model), 'no model folder before the last step');
    const resumed = await run(doc('resume-b'));
    assert.equal(resumed.resumedFrom, 4, 'from the step-4 checkpoint');
    const rows = (dir: string) =>
      readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map(({ time: _t, ...r }) => r);
    assert.deepEqual(rows(resumed.paths.logs), rows(full.paths.logs), 'the same log, bit for bit');
    for (const name of ['classifier.weight', 'vit.encoder.layer.0.output.dense.weight'])
      assert.deepEqual(floats(resumed.paths.model, name), floats(full.paths.model, name));
  });

  test('a GPT-2 sequence classifier with a word tokenizer learns a text label task', async () => {
    const text = await shapesTask('shapes-text', ['circle', 'square', 'triangle'], 'text', 48);
    const r = await run({
      name: 'gpt2-cls',
      objective: 'sequence-classifier',
      data: { task: text, seq_len: 64 },
      tokenizer: { build: 'word' },
      model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 32, n_head: 2 } },
      training: training(60, { lr: 0.01 }),
    });
    assert.equal(r.objective, 'sequence-classifier');
    assert.ok(r.eval!.accuracy >= 0.8, `eval accuracy ${r.eval!.accuracy} (chance ${r.chance})`);
    const folder = loadModelFolder(r.paths.model);
    assert.equal(folder.kind, 'sequence-classifier');
    assert.ok(folder.tokenizer, 'the built tokenizer is saved with the model');
    assert.deepEqual(folder.config.id2label, { 0: 'circle', 1: 'square', 2: 'triangle' });
  });

  test('bad classification configs name the field', async () => {
    const text = join(root, 'tasks', 'shapes-text');
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        {
          objective: 'sequence-classifier',
          data: { task: text },
          tokenizer: { build: 'word' },
          model: { config: {} },
        },
        /test\.yaml: data\.seq_len: required for objective sequence-classifier/,
      ],
      [
        {
          objective: 'image-classifier',
          data: { task: source },
          model: { config: { ...VIT, model_type: 'gpt2' } },
        },
        /model\.config/,
      ],
      [
        {
          objective: 'sequence-classifier',
          data: { task: text, seq_len: 32 },
          model: { from: base.paths.model },
        },
        /model\.from: .* holds a vit model; objective sequence-classifier fine-tunes a GPT-2, Llama or Qwen2 model/,
      ],
      [
        { objective: 'image-classifier', data: { task: text }, model: { config: VIT } },
        /example .* has 0 images in its prompt; an image classifier reads exactly one/,
      ],
    ];
    for (const [doc, pattern] of cases)
      await assert.rejects(run({ name: 'bad', training: training(2), ...doc }), (e: Error) => {
        assert.match(e.message, pattern);
        return true;
      });
  });
});
