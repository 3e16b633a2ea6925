/**
 * A small real study for the eval tests, built once per test file with the CLI: two text grid-world tasks (1×1 and
 * 1×2 grids) and a one-cell image task; a weak GPT-2 base (briefly pre-trained on the 1×2 task, word tokenizer),
 * that base fully fine-tuned on each text task, and a tiny LLaVA-style VLM before (a few steps) and after
 * fine-tuning on the image task.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const tlab = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['bin/tlab.js', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

function run(args: string[]): void {
  const r = tlab(args);
  assert.equal(r.status, 0, `tlab ${args.join(' ')}\n${r.stderr}`);
}

export interface Study {
  root: string;
  tasks: { grid1: string; grid2: string; shapes: string };
  models: { base: string; ftGrid1: string; ftGrid2: string; vlmBase: string; vlmShapes: string };
}

const GRID = (cols: number, train: number, test: number) =>
  `{ splits: { train: ${train}, test: ${test} }, rows: 1, cols: ${cols}, vocab_subset_size: 4, modality: text, questions_per_image: ${cols} }`;

export function buildStudy(root: string): Study {
  mkdirSync(root, { recursive: true });
  writeFileSync(
    join(root, 'tasks.yaml'),
    `tasks:
  grid1: { dataset: 'synthetic:grid-world', generator: ${GRID(1, 300, 30)}, dedupe: false }
  grid2: { dataset: 'synthetic:grid-world', generator: ${GRID(2, 150, 15)}, dedupe: false }
  shapes:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 240, test: 40 }, modality: image, rows: 1, cols: 1, vocab_subset_size: 4, questions_per_image: 1, cell_size: 16 }
    user_prompt: Which shape?
    dedupe: false
`,
  );
  run(['data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet']);
  const gpt2 = (name: string, task: string, steps: number, from: string | null) => {
    writeFileSync(
      join(root, `${name}.yaml`),
      `name: ${name}
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', task)}, seq_len: 96 }
${from ? `model: { from: ${from} }` : 'tokenizer: { build: word }\nmodel: { config: { model_type: gpt2, n_layer: 2, n_embd: 48, n_head: 4 } }'}
training: { max_steps: ${steps}, batch_size: 32, lr: 0.003, warmup_steps: 10, eval_every: ${steps} }
`,
    );
    run([from ? 'finetune' : 'pretrain', join(root, `${name}.yaml`), '--quiet']);
    return join(root, 'models', name);
  };
  const base = gpt2('base', 'grid2', 20, null);
  const ftGrid1 = gpt2('ft-grid1', 'grid1', 150, base);
  const ftGrid2 = gpt2('ft-grid2', 'grid2', 150, base);
  const vlm = (name: string, steps: number, from: string | null) => {
    writeFileSync(
      join(root, `${name}.yaml`),
      `name: ${name}
out: ${root}
seed: 0
data: { task: ${join(root, 'tasks', 'shapes')}, seq_len: 80 }
${
  from
    ? `model: { from: ${from} }`
    : `tokenizer: { build: word }
model:
  config:
    model_type: llava
    mm_projector_type: linear
    vision_feature_select_strategy: full
    vision_feature_layer: -1
    vision_config: { model_type: vit, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, image_size: 16, patch_size: 8 }
    text_config: { model_type: gpt2, n_embd: 32, n_layer: 2, n_head: 4, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }`
}
training: { max_steps: ${steps}, batch_size: 16, lr: 0.003, warmup_steps: ${Math.min(10, steps)}, eval_every: ${steps} }
`,
    );
    run([from ? 'finetune' : 'pretrain', join(root, `${name}.yaml`), '--quiet']);
    return join(root, 'models', name);
  };
  const vlmBase = vlm('vlm-base', 5, null);
  const vlmShapes = vlm('vlm-shapes', 400, vlmBase);
  return {
    root,
    tasks: {
      grid1: join(root, 'tasks', 'grid1'),
      grid2: join(root, 'tasks', 'grid2'),
      shapes: join(root, 'tasks', 'shapes'),
    },
    models: { base, ftGrid1, ftGrid2, vlmBase, vlmShapes },
  };
}

/** A grid config over the study's models and tasks (YAML), `server` entries when a URL is given. */
export function gridYaml(
  study: Study,
  out: string,
  options: { serverUrl?: string; batchSize?: number } = {},
): string {
  const m = study.models;
  const model = (name: string, path: string, extra = '') =>
    `  ${name}: { path: ${path}${extra}${options.serverUrl ? `, server: { url: '${options.serverUrl}', model: ${name} }` : ''} }`;
  return `out: ${out}
nb_eval_samples: 30
batch_size: ${options.batchSize ?? 16}
bootstrap: 200
inference: { max_tokens: 4 }
models:
${model('base', m.base)}
${model('ft-grid1', m.ftGrid1, ', base: base, train_task: grid1, strategy: full')}
${model('ft-grid2', m.ftGrid2, ', base: base, train_task: grid2, strategy: full')}
${model('vlm-base', m.vlmBase)}
${model('vlm-shapes', m.vlmShapes, ', base: vlm-base, train_task: shapes, strategy: full')}
tasks:
  grid1: { path: ${study.tasks.grid1} }
  grid2: { path: ${study.tasks.grid2} }
  shapes: { path: ${study.tasks.shapes} }
`;
}
