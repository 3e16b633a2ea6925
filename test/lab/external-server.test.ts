/**
 * Evaluation through an external OpenAI-compatible server (`evals.model_server`): the eval run launches the
 * server — `tlab serve` standing in for `vllm serve` through `command:` — polls /health, evaluates through the
 * OpenAI client and shuts the server down, with the same answers as in-process evaluation; a server already running
 * is used by URL; a server that never becomes healthy (or exits first) fails the model's cells saying so, and is
 * stopped. The vLLM command lines (model_server_args, LoRA adapters) are checked flag by flag.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { startServer } from '../../src/eval/serve/server.ts';
import { ModelServerArgsSchema, ModelServerSchema } from '../../src/lab/config/cluster-schema.ts';
import { loadExperiment } from '../../src/lab/config/load.ts';
import { loraRankFor, serverArgv } from '../../src/lab/external/model-server.ts';
import { runExperiment } from '../../src/lab/run.ts';
import { RunStore } from '../../src/lab/store.ts';
import { initModelFolder, presetConfig } from '../../src/models/hf/init-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-external-server-'));
after(() => rmSync(root, { recursive: true, force: true }));
// A random GPT-2 with a context long enough for the task's prompts, a tokenizer and a chat template.
const model = join(root, 'gpt2');
initModelFolder(presetConfig('gpt2-tiny'), model, { seed: 0 });

test('vllm serve command lines: model_server_args flag by flag, a LoRA adapter on its base, the API key', () => {
  const settings = ModelServerSchema.parse({ launch: 'vllm' });
  // The llama-cookbook's evals.model_server_args, plus a multi-image limit.
  const args = ModelServerArgsSchema.parse({
    tensor_parallel_size: 2,
    max_model_len: 8192,
    max_num_seqs: 128,
    enforce_eager: true,
    limit_mm_per_prompt: { image: 2 },
  });
  const spec = { name: 'ft', folder: '/ckpt/epoch_4', adapter: null };
  assert.deepEqual(serverArgv(settings, args, spec, '127.0.0.1', 8123, undefined), [
    'vllm',
    'serve',
    '/ckpt/epoch_4',
    '--host',
    '127.0.0.1',
    '--port',
    '8123',
    '--served-model-name',
    'ft',
    '--enforce-eager',
    '--limit-mm-per-prompt',
    '{"image":2}',
    '--max-model-len',
    '8192',
    '--max-num-seqs',
    '128',
    '--tensor-parallel-size',
    '2',
  ]);
  const adapter = { name: 'lora8', folder: '/models/base', adapter: { dir: '/ckpt/lora8-adapter', rank: 8 } };
  assert.deepEqual(serverArgv(settings, { enforce_eager: false }, adapter, '127.0.0.1', 9000, 'k3y'), [
    'vllm',
    'serve',
    '/models/base',
    '--host',
    '127.0.0.1',
    '--port',
    '9000',
    '--api-key',
    'k3y',
    '--served-model-name',
    'lora8-base',
    '--enable-lora',
    '--lora-modules',
    'lora8=/ckpt/lora8-adapter',
    '--max-lora-rank',
    '8',
  ]);
  assert.deepEqual([loraRankFor(4), loraRankFor(16), loraRankFor(17), loraRankFor(300)], [8, 16, 32, 320]);
  const tlab = ModelServerSchema.parse({ launch: 'tlab' });
  assert.throws(
    () => serverArgv(tlab, args, spec, 'h', 1, undefined),
    /vLLM engine settings; tlab serve .* takes none/,
  );
  assert.throws(() => serverArgv(tlab, {}, adapter, 'h', 1, undefined), /adapter serving needs vLLM/);
  assert.match(
    JSON.stringify(ModelServerArgsSchema.safeParse({ tensor_paralel_size: 2 }).error?.issues),
    /tensor_paralel_size/,
  );
  assert.match(
    JSON.stringify(ModelServerSchema.safeParse({ launch: 'url' }).error?.issues),
    /required with launch: url/,
  );
});

function experiment(name: string, server: string | null): string {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
out: ${join(root, name)}
tasks:
  grid:
    dataset: 'synthetic:grid-world'
    generator: { splits: { train: 8, test: 6 }, rows: 1, cols: 1, vocab_subset_size: 4, modality: text, questions_per_image: 1 }
    dedupe: false
models:
  gpt2: { path: gpt2 }
evals:
  batch_size: 4
  bootstrap: 10
  inference: { max_tokens: 4 }
${server ? `  model_server: ${server}\n` : ''}report: false
`,
  );
  return file;
}

const evaluate = (file: string) => runExperiment(loadExperiment(file), { quiet: true });

/** Each graded sample's prediction, by uid. */
function predictions(out: string): Record<string, string> {
  const lines = readFileSync(join(out, 'grader_logs', 'gpt2', 'grid.jsonl'), 'utf8')
    .trim()
    .split('\n');
  return Object.fromEntries(
    lines
      .map((l) => JSON.parse(l) as { uid: string; prediction?: string; raw_response?: string })
      .map((r) => [r.uid, String(r.prediction ?? r.raw_response)]),
  );
}

const cell = (out: string) => JSON.parse(readFileSync(join(out, 'cells', 'gpt2', 'grid.json'), 'utf8'));

let reference: { score: number; predictions: Record<string, string> };

test('launched: tlab serve starts, answers /health, is evaluated and shut down; answers equal in-process', async () => {
  const local = await evaluate(experiment('local', null));
  assert.ok(
    local.rows.every((r) => r.state === 'done'),
    JSON.stringify(new RunStore(local.plan.out).all().map((r) => r.error)),
  );
  reference = { score: cell(local.plan.out).score, predictions: predictions(local.plan.out) };

  const bin = resolve('bin/tlab.js');
  const served = await evaluate(
    experiment(
      'launched',
      `{ launch: vllm, command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(bin)}, serve], health_timeout_s: 300 }`,
    ),
  );
  assert.deepEqual(
    served.rows.map((r) => [r.stage, r.state]),
    [
      ['data', 'done'],
      ['eval', 'done'],
      ['summary', 'done'],
    ],
  );
  const out = served.plan.out;
  assert.equal(cell(out).status, 'done');
  assert.equal(cell(out).score, reference.score);
  assert.deepEqual(predictions(out), reference.predictions);
  // The summary's grid keeps the served cell (keyed by what was served) and says it came through a server.
  const grid = JSON.parse(readFileSync(join(out, 'eval_grid.json'), 'utf8'));
  assert.equal(grid.models[0].backend, 'openai');
  assert.equal(grid.cells.length, 1);
  // Shut down: it said so, and its port no longer answers.
  const log = readFileSync(join(out, 'external', 'servers', 'gpt2.log'), 'utf8');
  assert.match(log, /tlab serve: shutting down/);
  const url = /^(http:\/\/127\.0\.0\.1:\d+)$/m.exec(log)?.[1];
  assert.ok(url, log);
  await assert.rejects(fetch(`${url}/health`));
});

test('a server already running, by URL', async () => {
  const server = await startServer({ models: [{ dir: model, name: 'gpt2' }], port: 0 });
  try {
    const r = await evaluate(experiment('url', `{ launch: url, url: '${server.url}' }`));
    assert.ok(
      r.rows.every((x) => x.state === 'done'),
      JSON.stringify(r.rows),
    );
    assert.equal(cell(r.plan.out).score, reference.score);
    assert.deepEqual(predictions(r.plan.out), reference.predictions);
  } finally {
    await server.close();
  }
});

test('a server that never becomes healthy, or exits first, fails the cell with a clear message and is stopped', async () => {
  const pidFile = join(root, 'never-healthy.pid');
  process.env.NEVER_HEALTHY_PIDFILE = pidFile;
  const node = JSON.stringify(process.execPath);
  const never = await evaluate(
    experiment(
      'never',
      `{ launch: vllm, command: [${node}, ${JSON.stringify(resolve('test/fixtures/lab/never-healthy.mjs'))}], health_timeout_s: 2 }`,
    ),
  );
  const failed = never.rows.find((r) => r.stage === 'eval')!;
  assert.equal(failed.state, 'failed');
  const error = new RunStore(never.plan.out).read(failed.id)!.error!;
  assert.match(
    error.split('\n')[0],
    /1 of 1 cells failed, first grid: model server for gpt2 \(.*never-healthy\.mjs\): the server did not become healthy within 2 s \(GET http:\/\/127\.0\.0\.1:\d+\/health: HTTP 503\); log .*gpt2\.log/,
  );
  assert.equal(never.rows.find((r) => r.stage === 'summary')?.state, 'blocked');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), 'the unhealthy server was stopped');

  const exits = await evaluate(
    experiment('exits', `{ launch: vllm, command: [${node}, -e, "process.exit(4)"] }`),
  );
  const e = new RunStore(exits.plan.out).read(exits.rows.find((r) => r.stage === 'eval')!.id)!;
  assert.equal(e.state, 'failed');
  assert.match(
    e.error!,
    /the server process exited with code 4 before GET http:\/\/127\.0\.0\.1:\d+\/health answered 200/,
  );
  assert.ok(existsSync(join(exits.plan.out, 'external', 'servers', 'gpt2.log')));
});
