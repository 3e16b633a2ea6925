/**
 * `tlab generate --chat` (and prompts given as messages) stops at the chat template's end-of-turn token, not only
 * at EOS: answers for grading need no cutting by hand.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { type Gpt2Config, gpt2Model } from '../../src/models/gpt2.ts';
import { randomWeights } from './helpers.ts';
import { chatTokenizer } from './inference-fixture.ts';

/** A GPT-2 whose (tied) LM head always prefers <|end|>: the final norm outputs e0, and only <|end|>'s row has e0. */
function alwaysEndsTurns(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-eot-'));
  const config: Gpt2Config = {
    model_type: 'gpt2',
    vocab_size: chatTokenizer.vocabSize,
    n_positions: 64,
    n_embd: 16,
    n_layer: 1,
    n_head: 2,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'] }));
  const w = randomWeights(gpt2Model(config), 1);
  const d = config.n_embd;
  const wte = w.get('wte.weight')!.data as Float32Array;
  const end = chatTokenizer.tokenToId('<|end|>')!;
  for (let v = 0; v < config.vocab_size; v++) wte[v * d] = v === end ? 10 : 0;
  (w.get('ln_f.weight')!.data as Float32Array).fill(0);
  const bias = w.get('ln_f.bias')!.data as Float32Array;
  bias.fill(0);
  bias[0] = 1;
  writeSafetensors(join(dir, 'model.safetensors'), new Map([...w].map(([k, v]) => [`transformer.${k}`, v])));
  chatTokenizer.save(dir);
  return dir;
}

const model = alwaysEndsTurns();
const generate = (args: string[]) => {
  const r = spawnSync(
    process.execPath,
    ['bin/tlab.js', 'generate', '-m', model, '-n', '6', '--json', ...args],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim());
};

test('--chat: generation ends at the first <|end|>', () => {
  const r = generate(['--chat', '-p', 'what is it?']);
  assert.deepEqual([r.finish_reason, r.completion_tokens, r.completion], ['eos', 1, '']);
});

test('plain text prompts still run to EOS or the length limit (<|end|> is no stop there)', () => {
  const r = generate(['-p', 'what is it?']);
  assert.deepEqual([r.finish_reason, r.completion_tokens], ['length', 6]);
});
