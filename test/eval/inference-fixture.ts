/**
 * A tiny saved chat model for the inference and serve tests: a random GPT-2 (wide init, so greedy answers vary
 * and sometimes end at the end-of-turn token) with a character tokenizer and the built-in chat template.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../../src/engine/io/safetensors.ts';
import { type Gpt2Config, gpt2Model } from '../../src/models/gpt2.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { SIMPLE_CHAT_TEMPLATE } from '../../src/train/run-training.ts';
import { randomWeights } from './helpers.ts';

export const chatTokenizer = CharTokenizer.build({
  characters: 'abcdefghijklmnopqrstuvwxyz .,!?{}":0123456789',
  extraSpecialTokens: ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>'],
  chatTemplate: SIMPLE_CHAT_TEMPLATE,
});

export interface ChatModelFolder {
  dir: string;
  config: Gpt2Config;
  remove(): void;
}

/** Writes the model folder (config.json, model.safetensors, tokenizer files) into a fresh temp folder. */
export function saveChatModel(seed = 3, positions = 128, endBoost = 1.3): ChatModelFolder {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-chat-model-'));
  const config: Gpt2Config = {
    model_type: 'gpt2',
    vocab_size: chatTokenizer.vocabSize,
    n_positions: positions,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'] }));
  const weights = randomWeights(gpt2Model(config), seed);
  // A larger <|end|> embedding row makes the (tied) LM head pick it now and then, so some answers end the turn.
  const wte = weights.get('wte.weight')!.data as Float32Array;
  const end = chatTokenizer.tokenToId('<|end|>')!;
  for (let j = 0; j < config.n_embd; j++) wte[end * config.n_embd + j] *= endBoost;
  writeSafetensors(
    join(dir, 'model.safetensors'),
    new Map([...weights].map(([k, v]) => [`transformer.${k}`, v])),
  );
  chatTokenizer.save(dir);
  return { dir, config, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Short user questions of varied length (the conversations the tests send). */
export function questions(n: number): string[] {
  const words = ['what', 'is', 'the', 'answer', 'to', 'this', 'question', 'please', 'tell', 'me', 'now'];
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: 1 + ((i * 7) % 9) }, (_, j) => words[(i + j * 3) % words.length]).join(' '),
  );
}
