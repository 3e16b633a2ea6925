/**
 * A corpus of bad experiment files: each gives one clear first line (file, field, what is valid) from both
 * `tlab validate` and `tlab run`, exits 1, and leaves no experiment folder behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import { main } from '../../src/cli/main.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-lab-config-'));
after(() => rmSync(root, { recursive: true, force: true }));
const model = join(root, 'gpt2');
cpSync('test/fixtures/models/gpt2_lm', model, { recursive: true });

const grid = (cols: number) => ({
  dataset: 'synthetic:grid-world',
  generator: { splits: { train: 8, test: 4 }, rows: 1, cols, modality: 'text', questions_per_image: 1 },
});

/** A valid experiment; each case edits a copy. */
function base(): Record<string, unknown> {
  return {
    name: 'bad',
    out: join(root, 'out'),
    tasks: { a: grid(1), b: grid(2) },
    models: {
      given: { path: model },
      scratch: {
        pretrain: {
          task: 'a',
          config: { model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 2 },
          training: { max_steps: 2 },
        },
      },
    },
    finetuning: { lora_ranks: [2], strategies: ['full', 'lora'], training: { max_steps: 2 } },
    evals: { nb_eval_samples: 2 },
    metrics: { estimators: ['logme'] },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: test documents are edited freely
type Doc = Record<string, any>;
const cases: [string, (d: Doc) => void, RegExp][] = [
  ['a wrong type', (d) => (d.seed = 'zero'), /: seed: .*number/i],
  [
    'a misspelled top-level key',
    (d) => {
      d.modles = d.models;
      delete d.models;
    },
    /unknown field 'modles' \(did you mean 'models'\?\)/,
  ],
  [
    'a misspelled nested key',
    (d) => {
      d.finetuning.lora_rank = [2];
      delete d.finetuning.lora_ranks;
    },
    /finetuning: unknown field 'lora_rank' \(did you mean 'lora_ranks'\?\)/,
  ],
  [
    'an unknown key in a task',
    (d) => {
      d.tasks.a.sample_precent = 0.5;
    },
    /tasks\.a: unknown field 'sample_precent' \(did you mean 'sample_percent'\?\)/,
  ],
  [
    'a missing model folder',
    (d) => {
      d.models.given.path = join(root, 'nope');
    },
    /models\.given: .*nope: not a model folder/,
  ],
  [
    'a task that does not exist',
    (d) => {
      d.finetuning.tasks = ['c'];
    },
    /finetuning\.tasks: 'c' is not a task of this experiment; valid: a, b/,
  ],
  [
    'an unknown pre-training task',
    (d) => {
      d.models.scratch.pretrain.task = 'z';
    },
    /models\.scratch\.pretrain\.task: 'z' is not a task/,
  ],
  ['no models', (d) => (d.models = {}), /models: no models/],
  ['no tasks', (d) => (d.tasks = {}), /tasks: no tasks/],
  [
    'LoRA rank 0',
    (d) => {
      d.finetuning.lora_ranks = [0];
    },
    /finetuning\.lora_ranks\.0: a LoRA rank is at least 1/,
  ],
  [
    'LoRA without ranks',
    (d) => {
      delete d.finetuning.lora_ranks;
    },
    /finetuning\.lora_ranks: strategy 'lora' needs at least one rank/,
  ],
  [
    'impossible resources: 0 workers',
    (d) => {
      d.executor = { kind: 'workers', workers: 0 };
    },
    /executor\.workers: .*>=1/,
  ],
  [
    'impossible resources: a million workers',
    (d) => {
      d.executor = { kind: 'workers', workers: 1_000_000 };
    },
    /executor\.workers: .*<=256/,
  ],
  [
    'a cycle of continued pre-training',
    (d) => {
      d.models.x = { pretrain: { task: 'a', from: 'y', training: { max_steps: 1 } } };
      d.models.y = { pretrain: { task: 'a', from: 'x', training: { max_steps: 1 } } };
    },
    /models\.x\.pretrain\.from: a cycle: x → y → x/,
  ],
  [
    'an unknown estimator',
    (d) => {
      d.metrics.estimators = ['logmee'];
    },
    /metrics\.estimators\.0: unknown estimator 'logmee' \(did you mean 'logme'\?\)/,
  ],
  [
    'an unknown grader',
    (d) => {
      d.evals.graders = { a: 'exact_mach' };
    },
    /evals\.graders\.a: .*exact_mach.*did you mean 'exact_match'/,
  ],
  [
    'training without steps',
    (d) => {
      d.finetuning.training = {};
    },
    /finetuning\.training: give max_steps or epochs/,
  ],
  [
    'steps and epochs',
    (d) => {
      d.finetuning.training = { max_steps: 2, epochs: 1 };
    },
    /finetuning\.training\.epochs: give max_steps or epochs, not both/,
  ],
  [
    'a bad task setting',
    (d) => {
      d.tasks.a.sample_percent = 1.5;
    },
    /tasks\.a\.sample_percent: must be in \(0, 1\], got 1\.5/,
  ],
  ['a bad generator parameter', (d) => (d.tasks.a.generator.rows = 0), /tasks\.a\.generator\.rows: .*>=1/],
  [
    'an unknown generator',
    (d) => {
      d.tasks.a.dataset = 'synthetic:grid-wrld';
    },
    /tasks\.a\.dataset: unknown generator 'synthetic:grid-wrld' \(did you mean 'grid-world'\?\)/,
  ],
  [
    'an unknown shared tokenizer',
    (d) => {
      d.models.scratch.pretrain.tokenizer = 'shared';
    },
    /models\.scratch\.pretrain\.tokenizer: no tokenizer 'shared' under tokenizers/,
  ],
  ['a name that is not a folder name', (d) => (d.name = 'a/b'), /name: names may use letters/],
  [
    'an unknown zoo model to fine-tune',
    (d) => {
      d.finetuning.models = ['gpt3'];
    },
    /finetuning\.models: 'gpt3' is not a zoo model; valid: given, scratch/,
  ],
];

/** Runs the CLI in this process (fast), returning the exit code and what it wrote to stderr. */
async function tlab(args: string[]): Promise<{ status: number; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const status = await main(['node', 'tlab', ...args]);
    return { status, stderr };
  } finally {
    process.stderr.write = write;
  }
}

test(`${cases.length} bad experiment files: one clear line each, exit 1, nothing written`, async () => {
  assert.ok(cases.length >= 20);
  for (const [what, edit, pattern] of cases) {
    const doc = base();
    edit(doc);
    const file = join(root, 'bad.yaml');
    writeFileSync(file, YAML.stringify(doc));
    for (const command of ['validate', 'run']) {
      const r = await tlab([command, file, ...(command === 'run' ? ['--quiet'] : [])]);
      const first = r.stderr.split('\n')[0];
      assert.equal(r.status, 1, `${what} (${command}): exit ${r.status}\n${r.stderr}`);
      assert.match(first, /^error: .*bad\.yaml: /, `${what} (${command}): ${first}`);
      assert.match(first, pattern, `${what} (${command}): ${first}`);
      assert.ok(!existsSync(join(root, 'out')), `${what} (${command}): an experiment folder was created`);
    }
  }
  // One through the real binary too: the same line, exit code 1.
  const r = spawnSync(process.execPath, ['bin/tlab.js', 'run', join(root, 'bad.yaml')], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr.split('\n')[0], cases.at(-1)![2]);
});

test('the valid base experiment validates (and the corpus is not failing for another reason)', () => {
  const file = join(root, 'good.yaml');
  writeFileSync(file, YAML.stringify(base()));
  const r = spawnSync(process.execPath, ['bin/tlab.js', 'validate', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /valid \(transferlab layout\); \d+ runs: 2 data, 1 pretrain, 8 finetune/);
  assert.ok(!existsSync(join(root, 'out')), 'validate writes nothing');
});
