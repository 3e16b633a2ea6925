/**
 * Small trained models for the classifier inference tests: 1×1 grid-world tasks whose label is the cell's shape
 * (image and text versions), a ViT image classifier and a GPT-2 sequence classifier trained on them, and a GPT-2
 * causal LM (its next-token distribution is a decoder's source probabilities).
 */
import { join } from 'node:path';
import { buildTaskDataset } from '../../src/data/build/build-task.ts';
import { TaskConfigSchema } from '../../src/data/config.ts';
import { parseTrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/run-training.ts';

export const SHAPES = ['circle', 'square', 'triangle', 'star'];

async function shapesTask(root: string, name: string, modality: 'image' | 'text'): Promise<string> {
  const task = TaskConfigSchema.parse({
    dataset: 'synthetic:grid-world',
    generator: {
      splits: { train: 48, test: 24 },
      rows: 1,
      cols: 1,
      vocab: SHAPES,
      vocab_subset_size: SHAPES.length,
      questions_per_image: 1,
      modality,
      cell_size: 16,
    },
    dedupe: false,
  });
  return (
    await buildTaskDataset(name, task, {
      outDir: join(root, 'tasks'),
      baseDir: root,
      file: 'test',
      quiet: true,
    })
  ).dir;
}

export interface ClassifierFixture {
  imageTask: string;
  textTask: string;
  vit: string;
  sequence: string;
  lm: string;
}

export async function classifierFixture(root: string): Promise<ClassifierFixture> {
  const imageTask = await shapesTask(root, 'shapes-image', 'image');
  const textTask = await shapesTask(root, 'shapes-text', 'text');
  const run = async (doc: Record<string, unknown>) =>
    (
      await runTraining(parseTrainConfig({ out: root, seed: 3, ...doc }, 'fixture.yaml'), {
        configFile: 'fixture.yaml',
        quiet: true,
      })
    ).paths.model;
  const training = (steps: number, lr: number) => ({ max_steps: steps, batch_size: 16, lr, eval_every: 0 });
  const common = { data: { task: textTask, seq_len: 64, eval_split: null }, tokenizer: { build: 'word' } };
  return {
    imageTask,
    textTask,
    vit: await run({
      name: 'vit',
      objective: 'image-classifier',
      data: { task: imageTask, eval_split: null },
      model: {
        config: {
          model_type: 'vit',
          hidden_size: 32,
          num_hidden_layers: 1,
          num_attention_heads: 2,
          intermediate_size: 64,
          image_size: 16,
          patch_size: 8,
        },
      },
      training: training(60, 0.001),
    }),
    sequence: await run({
      name: 'seq',
      objective: 'sequence-classifier',
      ...common,
      model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 32, n_head: 2 } },
      training: training(60, 0.01),
    }),
    lm: await run({
      name: 'lm',
      ...common,
      model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 32, n_head: 2 } },
      training: training(10, 0.003),
    }),
  };
}
