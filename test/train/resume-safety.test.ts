// Resume is exact or refused (issue 9 #3): a checkpoint without its optimizer state, with missing or unknown
// tensors, or with a trainer_state.json that does not validate is an error naming the file; the fingerprint
// covers the whole config (but an explicit allow-list), the data, the tokenizer and the starting weights.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readSafetensors, writeSafetensors } from '../../src/engine/io/safetensors.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { checkpointName } from '../../src/train/checkpoint.ts';
import { parseTrainConfig } from '../../src/train/config.ts';
import {
  RESUME_MAY_CHANGE,
  type ResumeInputs,
  resumeFingerprint,
} from '../../src/train/resume-fingerprint.ts';
import { changedSettings, type TrainerOptions, train } from '../../src/train/trainer.ts';
import { setup } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-resume-safety-'));
const base = join(root, 'base');

function options(dir: string, overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  const { objective, train: source } = setup(8, 0);
  return {
    checkpointDir: join(dir, 'checkpoints'),
    logDir: join(dir, 'logs'),
    objective,
    train: source,
    strategy: { kind: 'full', weightDecay: 0.01 },
    optimizer: { kind: 'adamw' },
    learningRate: 3e-3,
    schedule: { kind: 'constant' },
    maxSteps: 4,
    saveEvery: 4,
    seed: 1,
    fingerprint: 'fp',
    settings: { training: { lr: 0.003 } },
    quiet: true,
    tensorboard: false,
    ...overrides,
  };
}

before(async () => {
  await train(options(base));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the base run with its checkpoint changed by `edit`, resumed to 6 steps. */
async function resumeAfter(name: string, edit: (ckpt: string) => void): Promise<unknown> {
  const dir = join(root, name);
  cpSync(base, dir, { recursive: true });
  edit(join(dir, 'checkpoints', checkpointName(4)));
  return train(options(dir, { maxSteps: 6 }));
}

const rewrite = (file: string, change: (m: Map<string, HostTensor>) => void) => {
  const m = readSafetensors(file);
  change(m);
  writeSafetensors(file, m);
};

test('a checkpoint resumes when nothing is wrong with it', async () => {
  const r = (await resumeAfter('ok', () => {})) as { resumedFrom: number; step: number };
  assert.equal(r.resumedFrom, 4);
  assert.equal(r.step, 6);
});

test('no optimizer.safetensors, or missing/unknown/misshapen tensors: errors naming the file, never zero moments', async () => {
  const cases: [string, (ckpt: string) => void, RegExp][] = [
    [
      'no-opt',
      (c) => rmSync(join(c, 'optimizer.safetensors')),
      /optimizer\.safetensors: missing: the optimizer state of step 4 \(\d+ tensors\) is needed to resume exactly$/,
    ],
    [
      'missing-state',
      (c) =>
        rewrite(join(c, 'optimizer.safetensors'), (m) =>
          m.delete([...m.keys()].find((k) => k.startsWith('optim.v.'))!),
        ),
      /optimizer\.safetensors: optimizer state 'optim\.v\..*' is missing$/,
    ],
    [
      'unknown-state',
      (c) =>
        rewrite(join(c, 'optimizer.safetensors'), (m) =>
          m.set('optim.extra', { dtype: 'float32', shape: [1], data: new Float32Array(1) }),
        ),
      /optimizer\.safetensors: holds optimizer state 'optim\.extra' that this run does not have$/,
    ],
    [
      'unknown-param',
      (c) =>
        rewrite(join(c, 'trainable.safetensors'), (m) =>
          m.set('h.9.mlp.weight', { dtype: 'float32', shape: [1], data: new Float32Array(1) }),
        ),
      /trainable\.safetensors: holds parameter 'h\.9\.mlp\.weight' that this run does not have$/,
    ],
    [
      'shape',
      (c) =>
        rewrite(join(c, 'trainable.safetensors'), (m) => {
          const [name] = [...m.keys()];
          m.set(name, { dtype: 'float32', shape: [1], data: new Float32Array(1) });
        }),
      /trainable\.safetensors: parameter '.*' is float32\[1\], this run has float32\[/,
    ],
    [
      'state-json',
      (c) => {
        const p = join(c, 'trainer_state.json');
        writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), step: 'four' }));
      },
      /trainer_state\.json: step: /,
    ],
    [
      'state-key',
      (c) => {
        const p = join(c, 'trainer_state.json');
        writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), stpe: 4 }));
      },
      /trainer_state\.json: \(top level\): unknown field 'stpe'/,
    ],
  ];
  for (const [name, edit, want] of cases)
    await assert.rejects(resumeAfter(name, edit), (e: Error) => {
      assert.equal(e.name, 'TlabError', `${name}: ${e.stack}`);
      assert.match(e.message, want, name);
      assert.ok(e.message.includes(join(root, name)), `${name}: names the checkpoint's file`);
      return true;
    });
});

test('a refused resume names the settings that changed', async () => {
  const dir = join(root, 'changed');
  cpSync(base, dir, { recursive: true });
  await assert.rejects(
    train(options(dir, { maxSteps: 6, fingerprint: 'other', settings: { training: { lr: 0.001 } } })),
    /this checkpoint was made with other settings: training\.lr \(0\.003 → 0\.001\); resume with the same config/,
  );
  assert.deepEqual(changedSettings({ a: { b: 1, c: [1] } }, { a: { b: 1, c: [2] }, d: 'x' }), [
    'a.c ([1] → [2])',
    'd ((none) → "x")',
  ]);
});

test('the fingerprint covers the whole config but the allow-list, the data, the tokenizer and the start weights', () => {
  const config = parseTrainConfig(
    {
      name: 'r',
      out: 'a',
      data: { task: 'tasks/t', seq_len: 16 },
      tokenizer: { build: 'char' },
      model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 2 } },
      training: { max_steps: 10, lr: 0.003 },
    },
    'run.yaml',
  );
  const tokenizer = CharTokenizer.build({ corpus: ['abc'] });
  const weights = new Map<string, HostTensor>([
    ['w', { dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) }],
  ]);
  const data = { train: { file: 'train.jsonl', rows: 3, sha256: 'a'.repeat(64) } };
  const inputs: ResumeInputs = {
    config,
    dataSplits: data,
    tokenizer,
    startWeights: weights,
    modelConfig: { model_type: 'gpt2' },
  };
  const fp = (over: Partial<ResumeInputs>) => resumeFingerprint({ ...inputs, ...over }).fingerprint;
  const ref = fp({});
  assert.equal(fp({}), ref, 'deterministic');
  for (const path of ['name', 'out', 'data.task', 'training.max_steps', 'training.save_every'] as const) {
    assert.ok((RESUME_MAY_CHANGE as readonly string[]).includes(path));
    const c = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
    const [a, b] = path.split('.');
    if (b) c[a][b] = typeof c[a][b] === 'number' ? 99 : 'elsewhere';
    else (c as Record<string, unknown>)[a] = 'elsewhere';
    assert.equal(fp({ config: c as never }), ref, `${path} may change`);
  }
  const changed = (mutate: (c: Record<string, Record<string, unknown>>) => void) => {
    const c = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
    mutate(c);
    return fp({ config: c as never });
  };
  assert.notEqual(
    changed((c) => (c.training.lr = 0.001)),
    ref,
    'training.lr',
  );
  assert.notEqual(
    changed((c) => (c.training.warmup_steps = 5)),
    ref,
    'training.warmup_steps',
  );
  assert.notEqual(
    changed((c) => (c.data.seq_len = 32)),
    ref,
    'data.seq_len',
  );
  assert.notEqual(
    changed((c) => (c.strategy.weight_decay = 0)),
    ref,
    'strategy.weight_decay',
  );
  assert.notEqual(fp({ tokenizer: CharTokenizer.build({ corpus: ['abd'] }) }), ref, 'tokenizer contents');
  const other = new Map(weights);
  other.set('w', { dtype: 'float32', shape: [2], data: Float32Array.of(1, 2.5) });
  assert.notEqual(fp({ startWeights: other }), ref, 'start weights');
  assert.notEqual(fp({ startWeights: null }), ref, 'from the seed vs from weights');
  assert.notEqual(fp({ dataSplits: { train: { ...data.train, sha256: 'b'.repeat(64) } } }), ref, 'data');
  const { settings } = resumeFingerprint(inputs);
  assert.deepEqual(Object.keys(settings).sort(), [
    'config',
    'data',
    'model_config',
    'start_weights',
    'tokenizer',
  ]);
});
