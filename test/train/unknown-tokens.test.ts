/**
 * The unknown-token trap: a word tokenizer built from one task maps most of another task, answers included, to
 * <unk>. Training on it must be refused (or, when allowed, warned about and recorded), never silently run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/run-training.ts';
import { unknownTokenProblem, unknownTokenRate } from '../../src/train/unknown-tokens.ts';
import { TlabError } from '../../src/util/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-unk-'));
writeFileSync(
  join(root, 'tasks.yaml'),
  `tasks:
  grid:
    dataset: synthetic:grid-world
    generator: { splits: { train: 12, validation: 3 }, modality: text, rows: 2, cols: 2, vocab_subset_size: 3, questions_per_image: 2 }
  forms:
    dataset: synthetic:json-extraction
    generator: { splits: { train: 12, validation: 4 }, modality: text }
`,
);
const built = spawnSync(
  process.execPath,
  ['bin/tlab.js', 'data', 'build', join(root, 'tasks.yaml'), '--out', join(root, 'tasks'), '--quiet'],
  { encoding: 'utf8' },
);
assert.equal(built.status, 0, built.stderr);
const grid = join(root, 'tasks', 'grid');
const forms = join(root, 'tasks', 'forms');

function config(name: string, fromTasks: string[], data: Record<string, unknown> = {}) {
  return parseTrainConfig(
    {
      name,
      out: root,
      data: { task: forms, seq_len: 128, ...data },
      tokenizer: { build: 'word', from_tasks: fromTasks },
      model: { config: { model_type: 'gpt2', n_layer: 1, n_embd: 16, n_head: 2 } },
      training: { max_steps: 2, batch_size: 4, eval_every: 2, eval_batches: 1 },
    },
    `${name}.yaml`,
  );
}

async function captureStderr<T>(f: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await f(), stderr };
  } finally {
    process.stderr.write = write;
  }
}

test('rates count every token and the answer tokens; a problem is any answer token or a rate above the threshold', () => {
  const r = unknownTokenRate(
    'train',
    [{ ids: [5, 1, 1, 7], labels: [-100, -100, 1, 7] }, { ids: [5, 6] }],
    1,
  );
  assert.deepEqual(
    { tokens: r.tokens, unknown: r.unknown, rate: r.rate, answers: r.answer_tokens, bad: r.answer_unknown },
    { tokens: 6, unknown: 2, rate: 2 / 6, answers: 2, bad: 1 },
  );
  assert.match(
    unknownTokenProblem(r, 0.5) ?? '',
    /33\.3% of its tokens \(2 of 6\) and 50\.0% of its answer tokens/,
  );
  const clean = unknownTokenRate('train', [{ ids: [5, 1, 6], labels: [-100, -100, 6] }], 1);
  assert.equal(unknownTokenProblem(clean, 0.5), null, 'one prompt token in three is under a 50% threshold');
  assert.notEqual(unknownTokenProblem(clean, 0.1), null);
});

test('training on a task the tokenizer cannot encode is refused, naming the file, the field and the rate', async () => {
  await assert.rejects(
    runTraining(config('other-vocab', [grid]), { configFile: 'other-vocab.yaml', quiet: true }),
    (e: unknown) => {
      assert.ok(e instanceof TlabError);
      assert.match(
        e.message,
        /^other-vocab\.yaml: data\.task: .*forms: split 'train': \d+\.\d% of its tokens/,
      );
      assert.match(e.message, /data\.allow_unknown_tokens: true/);
      assert.match(e.details ?? '', /from_tasks/);
      return true;
    },
  );
});

test('allow_unknown_tokens trains anyway, warns and records the rates in the summary and metrics.jsonl', async () => {
  const { value: r, stderr } = await captureStderr(() =>
    runTraining(config('allowed', [grid], { allow_unknown_tokens: true }), {
      configFile: 'allowed.yaml',
      quiet: true,
    }),
  );
  assert.match(stderr, /warning: allowed\.yaml: .*split 'train'.*unknown token/);
  assert.match(stderr, /warning: allowed\.yaml: .*split 'validation'/);
  const train = r.unknownTokens.find((u) => u.split === 'train')!;
  assert.ok(train.rate > 0.3 && train.answer_unknown > 0, JSON.stringify(train));
  const data = readFileSync(join(r.paths.logs, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((l) => l.split === 'data');
  assert.equal(data['unknown_rate.train'], train.rate);
  assert.equal(data.eval_split, 'validation');
  assert.equal(data.eval_rows, 4);
  // Unknown targets are no content: the accuracy is over the answer tokens the tokenizer could encode.
  assert.ok(r.eval!.tokens! < train.answer_tokens, `content targets ${r.eval!.tokens}`);
});

test('one tokenizer built from both tasks (tokenizer.from_tasks) encodes the training split: it trains', async () => {
  const { value: r, stderr } = await captureStderr(() =>
    runTraining(config('shared', [grid, forms]), { configFile: 'shared.yaml', quiet: true }),
  );
  const train = r.unknownTokens.find((u) => u.split === 'train')!;
  assert.deepEqual([train.unknown, train.answer_unknown], [0, 0]);
  assert.doesNotMatch(stderr, /split 'train'/);
  // The vocabulary comes from training splits: names and amounts first seen in validation are still unknown,
  // and said so.
  assert.match(stderr, /split 'validation'/);
  assert.equal(r.evalSplit?.rows, 4);
});
