// Unknown keys in every section of the YAML configs are errors with did-you-mean (issue 9 #14).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { SweepConfigSchema } from '../../src/metrics/sweep.ts';
import { parseHfConfig } from '../../src/models/hf/configs.ts';
import { parseTrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/run-training.ts';
import { planParameters } from '../../src/train/strategy.ts';
import type { TlabError } from '../../src/util/errors.ts';
import { zodIssuesError } from '../../src/util/zod-errors.ts';

const base = {
  name: 'r',
  data: { task: 'tasks/t', seq_len: 16 },
  tokenizer: { build: 'word' },
  model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 2 } },
  training: { max_steps: 2 },
};

function firstLine(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as TlabError).message;
  }
  throw new Error('no error');
}

test('training YAML: a typo in any section names the field and the key it probably meant', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...base, seeed: 1 }, "run.yaml: (top level): unknown field 'seeed' (did you mean 'seed'?)"],
    [
      { ...base, training: { max_steps: 2, warmup_step: 3 } },
      "run.yaml: training: unknown field 'warmup_step' (did you mean 'warmup_steps'?)",
    ],
    [
      { ...base, data: { ...base.data, seq_lenght: 8 } },
      "run.yaml: data: unknown field 'seq_lenght' (did you mean 'seq_len'?)",
    ],
    [
      { ...base, tokenizer: { biuld: 'word' } },
      "run.yaml: tokenizer: unknown field 'biuld' (did you mean 'build'?)",
    ],
    [
      { ...base, strategy: { kind: 'lora', lora: { r: 4, alpha: 8, targets: ['c_attn'], dropuot: 0.1 } } },
      "run.yaml: strategy.lora: unknown field 'dropuot' (did you mean 'dropout'?)",
    ],
    [{ ...base, training: { max_steps: 2, zzz: 1 } }, "run.yaml: training: unknown field 'zzz'"],
  ];
  for (const [config, want] of cases)
    assert.equal(
      firstLine(() => parseTrainConfig(config, 'run.yaml')),
      want,
    );
  try {
    parseTrainConfig({ ...base, training: { max_steps: 2, zzz: 1 } }, 'run.yaml');
  } catch (error) {
    assert.match(
      (error as TlabError).details ?? '',
      /^valid fields: max_steps, batch_size, micro_batch_size, lr,/m,
    );
  }
});

test('model.config (hand-written) is checked against the model type, nested configs too; config.json stays loose', () => {
  const strict = { prefix: 'model.config', strict: true };
  assert.equal(
    firstLine(() =>
      parseHfConfig(
        { model_type: 'gpt2', n_layr: 2, vocab_size: 10, n_positions: 8, n_embd: 8, n_head: 2 },
        'run.yaml',
        strict,
      ),
    ),
    "run.yaml: model.config: unknown field 'n_layr' (did you mean 'n_layer'?)",
  );
  assert.equal(
    firstLine(() =>
      parseHfConfig(
        {
          model_type: 'llava',
          text_config: { model_type: 'gpt2', n_embed: 8, n_layer: 1, n_head: 2 },
          vision_config: { model_type: 'vit', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2 },
        },
        'run.yaml',
        strict,
      ),
    ),
    "run.yaml: model.config.text_config: unknown field 'n_embed' (did you mean 'n_embd'?)",
  );
  // A Hugging Face config.json carries keys this tool has no use for: they are kept, not rejected.
  const loose = parseHfConfig({
    model_type: 'gpt2',
    vocab_size: 10,
    n_positions: 8,
    n_embd: 8,
    n_layer: 1,
    n_head: 2,
    use_cache: true,
  }) as unknown as Record<string, unknown>;
  assert.equal(loose.use_cache, true);
});

test('tlab pretrain: a typo in model.config stops the run before training', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-cfg-'));
  try {
    writeFileSync(join(dir, 'rows.jsonl'), '{"q":"1+1","a":"2"}\n{"q":"2+2","a":"4"}\n');
    writeFileSync(
      join(dir, 'tasks.yaml'),
      'tasks:\n  t:\n    dataset: rows.jsonl\n    user_prompt: "{q}"\n    assistant_text_column: a\n',
    );
    await buildTasksFromFile(join(dir, 'tasks.yaml'), { outDir: join(dir, 'tasks'), quiet: true });
    const config = parseTrainConfig(
      {
        ...base,
        out: join(dir, 'out'),
        data: { task: join(dir, 'tasks', 't'), seq_len: 16, eval_split: null },
        model: { config: { model_type: 'gpt2', n_layr: 1, n_embd: 16, n_head: 2 } },
      },
      'run.yaml',
    );
    await assert.rejects(
      runTraining(config, { configFile: 'run.yaml', quiet: true }),
      /^TlabError: run\.yaml: model\.config: unknown field 'n_layr' \(did you mean 'n_layer'\?\)$/m,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('strategy component names and sweep configs get did-you-mean too', () => {
  const specs = [
    { name: 'multi_modal_projector.linear_1.weight', shape: [4, 4] },
    { name: 'language_model.lm_head.weight', shape: [4, 4] },
  ];
  const componentOf = (n: string) => (n.startsWith('multi_modal_projector') ? 'projector' : 'decoder');
  assert.throws(
    () =>
      planParameters(
        specs as never,
        { kind: 'components', components: { projecter: 'full' } },
        1e-3,
        componentOf,
      ),
    /^TlabError: strategy\.components\.projecter: no such component \(did you mean 'projector'\?\); valid: /,
  );
  const sweep = SweepConfigSchema.safeParse({
    entries: [{ model: 'm', task: 't', featurs: 'f.npy', labels: 'y.npy' }],
    metrics: ['logme', { name: 'knn', optoins: { k: 3 } }],
  });
  assert.ok(!sweep.success);
  const e = zodIssuesError('sweep.yaml', [], sweep.error);
  assert.equal(e.message, "sweep.yaml: entries.0: unknown field 'featurs' (did you mean 'features'?)");
  assert.match(
    e.details ?? '',
    /sweep\.yaml: metrics\.1: unknown field 'optoins' \(did you mean 'options'\?\)/,
  );
});
