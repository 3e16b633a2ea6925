/**
 * External trainers' configs, planned from experiment files: torchtune recipes for Llama-3.2-Vision 11B (LoRA,
 * full, and the four component flags) and Llama 3.1 8B, and `trl sft` configs for Qwen2-VL (LoRA with
 * modules_to_save, full). Each must match its golden file (test/fixtures/lab/external/; regenerate with
 * TLAB_UPDATE_GOLDEN=1 and review the diff) and use only option names that torchtune's recipes and components and
 * TRL's argument classes define — test/fixtures/lab/upstream-options.json, read from their sources by
 * test/fixtures/lab/make_upstream_options.py. The datasets written for them follow each trainer's format.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadTaskSplit } from '../../src/data/read.ts';
import { loadExperiment } from '../../src/lab/config/load.ts';
import { executeRun } from '../../src/lab/execute-run.ts';
import {
  torchtuneRow,
  type trlRow,
  trlTextRow,
  writeTrainerDataset,
} from '../../src/lab/external/datasets.ts';
import { externalJob, trainerLaunch } from '../../src/lab/external/finetune.ts';
import type { TrainerLaunch } from '../../src/lab/external/job.ts';
import { pythonYaml } from '../../src/lab/external/python-yaml.ts';
import { planExperiment } from '../../src/lab/plan/plan.ts';
import type { Plan, PlannedRun } from '../../src/lab/plan/types.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-external-configs-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Upstream {
  torchtune: {
    recipes: Record<string, string[]>;
    components: Record<string, { params: string[]; var_kwargs: boolean }>;
  };
  trl: {
    sft_parses: string[];
    fields: Record<string, string[]>;
    dataset_config: string[];
    cli_flags: string[];
  };
}
const upstream = JSON.parse(readFileSync('test/fixtures/lab/upstream-options.json', 'utf8')) as Upstream;

function json(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
}

/** Model folders with the config.json (and shard index) of the real models; no weights are read. */
function fakeModels(): void {
  const shards = (n: number) =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        `layer.${i}.weight`,
        `model-0000${i + 1}-of-0000${n}.safetensors`,
      ]),
    );
  json(join(root, 'models/Llama-3.2-11B-Vision-Instruct/config.json'), {
    architectures: ['MllamaForConditionalGeneration'],
    model_type: 'mllama',
    text_config: { model_type: 'mllama_text_model', hidden_size: 4096, num_hidden_layers: 40 },
    vision_config: { model_type: 'mllama_vision_model', image_size: 560 },
  });
  json(join(root, 'models/Llama-3.2-11B-Vision-Instruct/model.safetensors.index.json'), {
    weight_map: shards(5),
  });
  json(join(root, 'models/Llama-3.1-8B-Instruct/config.json'), {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 4096,
    num_hidden_layers: 32,
  });
  json(join(root, 'models/Llama-3.1-8B-Instruct/model.safetensors.index.json'), { weight_map: shards(4) });
  for (const m of ['Llama-3.2-11B-Vision-Instruct', 'Llama-3.1-8B-Instruct']) {
    mkdirSync(join(root, 'models', m, 'original'), { recursive: true });
    writeFileSync(join(root, 'models', m, 'original', 'tokenizer.model'), '');
  }
  json(join(root, 'models/Qwen2-VL-2B-Instruct/config.json'), {
    architectures: ['Qwen2VLForConditionalGeneration'],
    model_type: 'qwen2_vl',
  });
}

const TASKS = `tasks:
  shapes:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 24, test: 4 }, modality: image, rows: 1, cols: 1, vocab_subset_size: 4, questions_per_image: 1, cell_size: 16 }
    user_prompt: Which shape?
    dedupe: false
  grid:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 24, test: 4 }, rows: 1, cols: 1, vocab_subset_size: 4, modality: text, questions_per_image: 1 }
    dedupe: false
`;

async function planned(name: string, body: string): Promise<Plan> {
  const file = join(root, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\nout: ${join(root, name)}\n${TASKS}${body}`);
  const plan = await planExperiment(loadExperiment(file));
  for (const r of plan.runs.filter((x) => x.stage === 'data'))
    assert.equal((await executeRun(plan, r, { quiet: true })).state, 'done');
  return plan;
}

let torchtune: Plan;
let trl: Plan;
before(async () => {
  fakeModels();
  torchtune = await planned(
    'tt',
    `models:
  llama_vision: { path: models/Llama-3.2-11B-Vision-Instruct }
  llama_text: { path: models/Llama-3.1-8B-Instruct }
finetuning:
  strategies: [full, lora]
  lora_ranks: [8]
  fusion: true
  fusion+encoder: true
  fusion+decoder: true
  fusion+encoder+decoder: true
  training: { max_steps: 30, batch_size: 16, micro_batch_size: 2, lr: 0.0001, warmup_steps: 5 }
  seq_len: 512
  external: { trainer: torchtune, ngpu: 2 }
evals: { tasks: [shapes] }
`,
  );
  trl = await planned(
    'trl',
    `models:
  qwen: { path: models/Qwen2-VL-2B-Instruct }
finetuning:
  tasks: [shapes]
  strategies: [full, lora]
  lora_ranks: [16]
  lora: { dropout: 0.05 }
  training: { max_steps: 30, batch_size: 8, lr: 0.0002, warmup_steps: 3 }
  external: { trainer: trl, modules_to_save: [merger] }
evals: { tasks: [shapes] }
`,
  );
});

function launches(plan: Plan): Map<string, TrainerLaunch & { run: PlannedRun }> {
  const out = new Map<string, TrainerLaunch & { run: PlannedRun }>();
  for (const run of plan.runs.filter((r) => r.stage === 'finetune')) {
    const ctx = { plan, run, quiet: true };
    out.set(run.name, { ...trainerLaunch(externalJob(ctx), null, run.name), run });
  }
  return out;
}

/** YAML of every run's config and command, with this test's folder written as <root>. */
function golden(name: string, all: Map<string, TrainerLaunch>): void {
  // Each config as the file the trainer reads (pythonYaml), after its command line.
  const text = [...all]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `# ---- ${k}\n# ${v.argv.join(' ')}\n${pythonYaml(v.config)}`)
    .join('')
    .split(root)
    .join('<root>');
  const path = `test/fixtures/lab/external/${name}`;
  if (process.env.TLAB_UPDATE_GOLDEN) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  assert.equal(
    text,
    readFileSync(path, 'utf8'),
    `${path} differs (TLAB_UPDATE_GOLDEN=1 rewrites it; review the diff)`,
  );
}

/** Every `_component_` node's keys are parameters of what it names (nested nodes included). */
function checkComponents(node: unknown, path: string, problems: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => {
      checkComponents(n, `${path}[${i}]`, problems);
    });
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const obj = node as Record<string, unknown>;
  if (typeof obj._component_ === 'string') {
    const c = upstream.torchtune.components[obj._component_];
    if (!c) problems.push(`${path}: ${obj._component_} is not in the upstream fixture`);
    else if (!c.var_kwargs)
      for (const k of Object.keys(obj))
        if (k !== '_component_' && !c.params.includes(k))
          problems.push(`${path}.${k}: not a parameter of ${obj._component_}`);
  }
  for (const [k, v] of Object.entries(obj)) checkComponents(v, `${path}.${k}`, problems);
}

test('torchtune: configs match the golden file and use only names torchtune (and torch.optim.AdamW) define', () => {
  const all = launches(torchtune);
  assert.deepEqual([...all.keys()].sort(), [
    'llama_text__grid__full__s0',
    'llama_text__grid__lora-r8__s0',
    'llama_vision__grid__comp-fusion-decoder__s0',
    'llama_vision__grid__comp-fusion-encoder-decoder__s0',
    'llama_vision__grid__comp-fusion-encoder__s0',
    'llama_vision__grid__comp-fusion__s0',
    'llama_vision__grid__full__s0',
    'llama_vision__grid__lora-r8__s0',
    'llama_vision__shapes__comp-fusion-decoder__s0',
    'llama_vision__shapes__comp-fusion-encoder-decoder__s0',
    'llama_vision__shapes__comp-fusion-encoder__s0',
    'llama_vision__shapes__comp-fusion__s0',
    'llama_vision__shapes__full__s0',
    'llama_vision__shapes__lora-r8__s0',
  ]);
  golden(
    'torchtune-configs.yaml',
    new Map([...all].filter(([k]) => k.startsWith('llama_vision__shapes') || k.startsWith('llama_text'))),
  );
  const problems: string[] = [];
  for (const [name, l] of all) {
    const recipe = l.argv[l.argv.indexOf('--config') - 1];
    const keys = upstream.torchtune.recipes[recipe];
    assert.ok(keys, `${name}: recipe ${recipe} is not in the upstream fixture`);
    for (const k of Object.keys(l.config))
      if (!keys.includes(k)) problems.push(`${name}: ${k}: not read by ${recipe}`);
    checkComponents(l.config, name, problems);
    const collate = l.config.collate_fn;
    if (collate !== undefined && !upstream.torchtune.components[String(collate)])
      problems.push(`${name}: collate_fn ${collate} is not in the upstream fixture`);
    assert.deepEqual(l.argv.slice(0, 4), ['tune', 'run', '--nproc_per_node', '2'], name);
  }
  assert.deepEqual(problems, []);
});

test('torchtune: each component flag sets all three components explicitly (the cookbook left the rest at builder defaults)', () => {
  const all = launches(torchtune);
  const model = (name: string) =>
    all.get(`llama_vision__shapes__${name}__s0`)!.config.model as Record<string, unknown>;
  // fusion = projector + cross-attention + fusion embeddings; the flag's other parts train with it, nothing else.
  const expected: Record<string, [boolean, boolean, boolean]> = {
    'comp-fusion': [false, false, true],
    'comp-fusion-encoder': [true, false, true],
    'comp-fusion-decoder': [false, true, true],
    'comp-fusion-encoder-decoder': [true, true, true],
    full: [true, true, true],
  };
  for (const [run, [encoder, decoder, fusion]] of Object.entries(expected)) {
    const m = model(run);
    assert.equal(m._component_, 'torchtune.models.llama3_2_vision.llama3_2_vision_11b', run);
    for (const key of ['encoder_trainable', 'decoder_trainable', 'fusion_trainable'])
      assert.ok(Object.hasOwn(m, key), `${run}: ${key} is set explicitly`);
    assert.deepEqual(
      [m.encoder_trainable, m.decoder_trainable, m.fusion_trainable],
      [encoder, decoder, fusion],
      run,
    );
    assert.equal(all.get(`llama_vision__shapes__${run}__s0`)!.argv.at(-3), 'full_finetune_distributed');
  }
  const lora = model('lora-r8');
  assert.equal(lora._component_, 'torchtune.models.llama3_2_vision.lora_llama3_2_vision_11b');
  assert.deepEqual(
    [lora.encoder_trainable, lora.decoder_trainable, lora.fusion_trainable],
    ['frozen', 'lora', 'lora'],
  );
  assert.deepEqual([lora.lora_rank, lora.lora_alpha], [8, 16]);
  // Batches of 16 rows = 2 per device × 2 GPUs × 4 accumulated. torchtune's steps per epoch are
  // floor(ceil(24 rows / 2 replicas / 2 per batch) / 4) = floor(6 / 4) = 1, so 30 steps are 30 epochs of 1.
  const c = all.get('llama_vision__shapes__full__s0')!.config;
  assert.deepEqual(
    [c.epochs, c.max_steps_per_epoch, c.batch_size, c.gradient_accumulation_steps],
    [30, 1, 2, 4],
  );
});

test('torchtune: the dataset is {"messages": [...]} rows with images as absolute local paths, not data: URLs', async () => {
  const job = externalJob({
    plan: torchtune,
    run: torchtune.runs.find((r) => r.name === 'llama_vision__shapes__lora-r8__s0')!,
    quiet: true,
  });
  const rows = await writeTrainerDataset('torchtune', job.taskDir, 'train', job.paths.dataset);
  const lines = readFileSync(job.paths.dataset, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, rows);
  assert.equal(rows, 24);
  const examples = await loadTaskSplit(job.taskDir, 'train');
  assert.deepEqual(lines[0], torchtuneRow(examples[0], job.taskDir));
  for (const row of lines) {
    const parts = row.messages.flatMap((m: { content: unknown[] }) => m.content) as {
      type: string;
      image_url: { url: string } | null;
    }[];
    const images = parts.filter((p) => p.type === 'image_url');
    assert.equal(images.length, 1);
    for (const p of images) {
      assert.ok(isAbsolute(p.image_url!.url) && !p.image_url!.url.startsWith('data:'), p.image_url!.url);
      assert.ok(statSync(p.image_url!.url).size > 0);
    }
    assert.deepEqual(
      row.messages.map((m: { role: string }) => m.role),
      ['user', 'assistant'],
    );
  }
});

test('configs are written as YAML 1.1 (Python) reads them: no bare no/yes/on, exponents with a decimal point', () => {
  const text = pythonYaml({
    eval_strategy: 'no',
    report_to: 'none',
    lr: 5e-7,
    wd: 0.01,
    flag: true,
    none: null,
  });
  assert.equal(text, 'eval_strategy: "no"\nreport_to: none\nlr: 5.0e-7\nwd: 0.01\nflag: true\nnone: null\n');
  assert.match(pythonYaml([1e21]), /^- 1\.0e\+21$/m);
});

test('TRL: configs match the golden file and use only fields of the classes trl sft parses', () => {
  const all = launches(trl);
  assert.deepEqual([...all.keys()].sort(), ['qwen__shapes__full__s0', 'qwen__shapes__lora-r16__s0']);
  golden('trl-configs.yaml', all);
  const classes = [...upstream.trl.sft_parses, '_BaseConfig', 'TrainingArguments'];
  const known = new Set(classes.flatMap((c) => upstream.trl.fields[c] ?? []));
  assert.ok(known.size > 100, 'the fixture lists the fields');
  const problems: string[] = [];
  for (const [name, l] of all) {
    for (const k of Object.keys(l.config)) if (!known.has(k)) problems.push(`${name}: ${k}`);
    for (const d of l.config.datasets as Record<string, unknown>[])
      for (const k of Object.keys(d))
        if (!upstream.trl.dataset_config.includes(k)) problems.push(`${name}: datasets.${k}`);
    for (const flag of l.argv.filter((a) => a.startsWith('--')))
      if (!upstream.trl.cli_flags.includes(flag.slice(2))) problems.push(`${name}: ${flag}`);
    assert.deepEqual(l.argv.slice(0, 2), ['trl', 'sft']);
    assert.equal(l.dataset, 'trl');
  }
  assert.deepEqual(problems, []);
  const lora = all.get('qwen__shapes__lora-r16__s0')!.config;
  assert.deepEqual(
    [
      lora.use_peft,
      lora.lora_r,
      lora.lora_alpha,
      lora.lora_dropout,
      lora.lora_modules_to_save,
      lora.max_length,
    ],
    [true, 16, 32, 0.05, ['merger'], null],
  );
  // Names of the language model's projections only (Qwen2-VL's vision blocks use qkv/proj/fc1/fc2).
  assert.deepEqual(lora.lora_target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj']);
  assert.equal(all.get('qwen__shapes__full__s0')!.config.use_peft, false);
});

test('TRL: the dataset fills each image placeholder from images; component flags are refused with the reason', async () => {
  const run = trl.runs.find((r) => r.name === 'qwen__shapes__lora-r16__s0')!;
  const job = externalJob({ plan: trl, run, quiet: true });
  await writeTrainerDataset('trl', job.taskDir, 'train', job.paths.dataset);
  for (const line of readFileSync(job.paths.dataset, 'utf8').trim().split('\n')) {
    const row = JSON.parse(line) as ReturnType<typeof trlRow>;
    const placeholders = row.messages.flatMap((m) => m.content).filter((p) => p.type === 'image');
    assert.equal(placeholders.length, row.images.length);
    assert.equal(row.images.length, 1);
    for (const p of row.images) assert.ok(isAbsolute(p) && statSync(p).size > 0);
  }
  const text = (await loadTaskSplit(join(trl.out, 'formatted_datasets', 'grid'), 'train'))[0];
  assert.deepEqual(Object.keys(trlTextRow(text)), ['messages']);
  assert.equal(typeof trlTextRow(text).messages[0].content, 'string');

  const components = structuredClone(run);
  (components.config as { strategy: unknown }).strategy = {
    kind: 'components',
    components: { projector: 'full', encoder: 'frozen', decoder: 'full' },
  };
  assert.throws(
    () => trainerLaunch(externalJob({ plan: trl, run: components, quiet: true }), null, 'here'),
    /component flags train whole parts without adapters, which trl sft has no option for/,
  );
});
