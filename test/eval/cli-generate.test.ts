import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CommanderError } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { Generator } from '../../src/eval/generate.ts';
import { TlabError } from '../../src/util/errors.ts';
import { tinyModel, tokenizer } from './helpers.ts';

/** A tiny saved GPT-2 folder as Hugging Face writes it (prefixed names and the attention-mask buffers included). */
function savedModel(): { dir: string; model: ReturnType<typeof tinyModel> } {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-gen-'));
  const tiny = tinyModel(6);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(tiny.config));
  const tensors = new Map([...tiny.weights].map(([k, v]) => [`transformer.${k}`, v]));
  tensors.set('transformer.h.0.attn.masked_bias', {
    dtype: 'float32',
    shape: [],
    data: Float32Array.of(-1e4),
  });
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  tokenizer.save(dir);
  return { dir, model: tiny };
}

const saved = savedModel();

/** The real executable (exit status as the shell sees it). */
function tlabProcess(...args: string[]) {
  return spawnSync(process.execPath, ['bin/tlab.js', 'generate', ...args], { encoding: 'utf8' });
}

/** The CLI in this process (no start-up cost per case): what it would print and its exit status. */
async function tlab(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const program = buildProgram();
  const out: string[] = [];
  const err: string[] = [];
  program.commands
    .find((c) => c.name() === 'generate')!
    .configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
  let status = 0;
  try {
    await program.parseAsync(['node', 'tlab', 'generate', ...args]);
  } catch (error) {
    if (error instanceof CommanderError) status = error.exitCode;
    else if (error instanceof TlabError) {
      status = 1;
      err.push(`error: ${error.message}\n`);
    } else throw error;
  }
  return { status, stdout: out.join(''), stderr: err.join('') };
}

test('tlab generate --help lists the decoding knobs', () => {
  const r = tlabProcess('--help');
  assert.equal(r.status, 0, r.stderr);
  for (const flag of [
    '--max-new-tokens',
    '--temperature',
    '--top-k',
    '--top-p',
    '--stop',
    '--no-cache',
    '--log',
  ])
    assert.ok(r.stdout.includes(flag), flag);
});

test('tlab generate runs on a saved model folder, prints JSON and appends to a JSONL log', async () => {
  const log = join(saved.dir, 'log.jsonl');
  const promptFile = join(saved.dir, 'prompts.txt');
  writeFileSync(promptFile, 'the quick brown\n\nhello\n');
  const args = ['-m', saved.dir, '-p', 'abc', '-f', promptFile, '-n', '7', '--json', '--log', log];
  const r = await tlab(...args);
  assert.equal(r.status, 0, r.stderr);
  const printed = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    printed.map((p) => p.prompt),
    ['abc', 'the quick brown', 'hello'],
  );
  // Same tokens as the library with the same settings.
  const g = new Generator(saved.model.model, saved.model.weights, tokenizer);
  const expected = await g.generate(['abc', 'the quick brown', 'hello'], { maxNewTokens: 7 });
  await g.release();
  assert.deepEqual(
    printed.map((p) => p.completion),
    expected.map((e) => e.text),
  );
  assert.equal(printed[0].settings.max_new_tokens, 7);
  assert.equal(printed[0].completion_tokens, expected[0].completionTokens);
  // A second run appends.
  assert.equal((await tlab(...args, '--no-cache')).status, 0);
  const lines = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 6);
  assert.deepEqual(
    lines.slice(3).map((l) => l.completion),
    printed.map((p) => p.completion),
  );
  assert.equal(lines[3].settings.cache, false);
  assert.ok(lines[0].started_at && lines[0].finished_at && lines[0].model === saved.dir);
});

test('tlab generate reads settings from a config file; flags override it', async () => {
  const config = join(saved.dir, 'gen.yaml');
  writeFileSync(config, `model: .\nprompt: [abc]\nmax_new_tokens: 3\ntemperature: 0.7\nseed: 4\n`);
  const r = await tlab('-c', config, '--json', '-n', '5');
  assert.equal(r.status, 0, r.stderr);
  const rec = JSON.parse(r.stdout);
  assert.equal(rec.settings.max_new_tokens, 5);
  assert.equal(rec.settings.temperature, 0.7);
  assert.equal(rec.completion_tokens, 5);
  writeFileSync(config, 'model: .\nprompt: abc\ntop_p: 2\n');
  const bad = await tlab('-c', config);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr.split('\n')[0], /^error: .*gen\.yaml: top_p: /);
});

test('bad flags give one clear error line and a non-zero exit', async () => {
  const cases: [string[], RegExp][] = [
    [['--temperature', '-1'], /^error: option '-t, --temperature <t>' argument '-1' is invalid/],
    [['--top-p', '0'], /^error: option '--top-p <p>' argument '0' is invalid. expected a number in \(0, 1\]/],
    [['--top-p', '1.5'], /^error: option '--top-p <p>'/],
    [['--max-new-tokens', '0'], /^error: option '-n, --max-new-tokens <n>'/],
  ];
  for (const [flags, pattern] of cases) {
    const r = await tlab('-m', saved.dir, '-p', 'abc', ...flags);
    assert.notEqual(r.status, 0, flags.join(' '));
    assert.match(r.stderr.split('\n')[0], pattern);
  }
  const missing = await tlab('-m', join(saved.dir, 'nope'), '-p', 'abc');
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr.split('\n')[0], /^error: .*nope: model folder not found/);
  const noPrompt = await tlab('-m', saved.dir);
  assert.match(noPrompt.stderr.split('\n')[0], /^error: --prompt or --prompt-file: give at least one prompt/);
  // The executable's exit status and first line for one of them.
  const r = tlabProcess('-m', saved.dir, '-p', 'abc', '--temperature', '-1');
  assert.equal(r.status, 1);
  assert.match(r.stderr.split('\n')[0], /^error: option '-t, --temperature <t>' argument '-1' is invalid/);
});
