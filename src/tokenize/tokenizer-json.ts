/**
 * Structure checks for Hugging Face tokenizer.json files. @huggingface/tokenizers reports malformed files with
 * messages like "Cannot read properties of undefined", so everything the library relies on is checked here
 * first and reported as `<file>: <key> ...; valid: ...`.
 */
import { TlabError, validChoices } from '../util/errors.ts';
import { describeJson, isJsonObject, type JsonObject } from '../util/json-file.ts';

export const MODEL_TYPES = ['BPE', 'WordPiece', 'WordLevel', 'Unigram'] as const;
export type TokenizerModelType = (typeof MODEL_TYPES)[number];

/** Component types that @huggingface/tokenizers@0.2.0 implements (its create_* switch statements). */
const COMPONENT_TYPES = {
  normalizer: [
    'BertNormalizer',
    'Precompiled',
    'Sequence',
    'Replace',
    'NFC',
    'NFD',
    'NFKC',
    'NFKD',
    'Strip',
    'StripAccents',
    'Lowercase',
    'Prepend',
  ],
  pre_tokenizer: [
    'BertPreTokenizer',
    'Sequence',
    'Whitespace',
    'WhitespaceSplit',
    'Metaspace',
    'ByteLevel',
    'Split',
    'Punctuation',
    'Digits',
    'Replace',
    'FixedLength',
  ],
  post_processor: ['TemplateProcessing', 'ByteLevel', 'BertProcessing', 'RobertaProcessing', 'Sequence'],
  decoder: [
    'ByteLevel',
    'WordPiece',
    'Metaspace',
    'BPEDecoder',
    'CTC',
    'Sequence',
    'Replace',
    'Fuse',
    'Strip',
    'ByteFallback',
  ],
} as const;

/** The key under which each component's Sequence variant lists its children. */
const SEQUENCE_KEYS = {
  normalizer: 'normalizers',
  pre_tokenizer: 'pretokenizers',
  post_processor: 'processors',
  decoder: 'decoders',
} as const;

type Component = keyof typeof COMPONENT_TYPES;

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

export interface TokenizerModelJson extends JsonObject {
  type: TokenizerModelType;
  /** token → id for BPE, WordPiece, WordLevel; [token, log-probability] pairs for Unigram. */
  vocab: Record<string, number> | [string, number][];
  merges?: (string | [string, string])[];
  unk_token?: string | null;
}

/** A tokenizer.json whose parts the library needs are present (components null when absent). */
export interface TokenizerJson extends JsonObject {
  added_tokens: AddedTokenJson[];
  normalizer: JsonObject | null;
  pre_tokenizer: JsonObject | null;
  post_processor: JsonObject | null;
  decoder: JsonObject | null;
  model: TokenizerModelJson;
}

/** Checks a parsed tokenizer.json and returns it with absent components set to null. `file` names it in errors. */
export function validateTokenizerJson(value: unknown, file: string): TokenizerJson {
  const fail = (key: string, problem: string, valid?: string): never => {
    throw new TlabError(`${file}: ${key} ${problem}${valid ? `; valid: ${valid}` : ''}`);
  };
  if (!isJsonObject(value))
    return fail('(top level)', `is ${describeJson(value)}`, 'an object with a "model" key');
  const model = value.model;
  if (!isJsonObject(model))
    return fail('model', `is ${describeJson(model)}`, 'an object with "type" and "vocab"');
  const type = model.type ?? inferModelType(model);
  if (typeof type !== 'string' || !(MODEL_TYPES as readonly string[]).includes(type)) {
    return fail('model.type', `${JSON.stringify(type)} is not supported`, MODEL_TYPES.join(', '));
  }
  checkVocab(model.vocab, type as TokenizerModelType, fail);
  if (type === 'BPE') checkMerges(model.merges, fail);
  if ((type === 'WordPiece' || type === 'WordLevel') && typeof model.unk_token !== 'string') {
    fail(
      'model.unk_token',
      `is ${describeJson(model.unk_token)}`,
      `a token string (${type} maps unknown words to it)`,
    );
  }
  const addedTokens = value.added_tokens ?? [];
  if (!Array.isArray(addedTokens)) return fail('added_tokens', `is ${describeJson(addedTokens)}`, 'an array');
  addedTokens.forEach((token, i) => {
    if (!isJsonObject(token))
      fail(`added_tokens[${i}]`, `is ${describeJson(token)}`, 'an object {id, content}');
    else if (!Number.isInteger(token.id) || (token.id as number) < 0) {
      fail(`added_tokens[${i}].id`, `is ${describeJson(token.id)}`, 'a non-negative integer');
    } else if (typeof token.content !== 'string') {
      fail(`added_tokens[${i}].content`, `is ${describeJson(token.content)}`, 'a string');
    }
  });
  const out = { ...value, model: { ...model, type }, added_tokens: addedTokens } as TokenizerJson;
  for (const component of Object.keys(COMPONENT_TYPES) as Component[]) {
    const config = value[component] ?? null;
    if (config !== null) checkComponent(config, component, component, fail);
    out[component] = config as JsonObject | null;
  }
  return out;
}

/** How the library itself guesses a type for files written before tokenizer.json carried one. */
function inferModelType(model: JsonObject): string | undefined {
  if (Array.isArray(model.vocab)) return 'Unigram';
  if (!isJsonObject(model.vocab)) return undefined;
  if ('merges' in model) return 'BPE';
  if ('continuing_subword_prefix' in model) return 'WordPiece';
  return 'WordLevel';
}

type Fail = (key: string, problem: string, valid?: string) => never;

function checkVocab(vocab: unknown, type: TokenizerModelType, fail: Fail): void {
  if (type === 'Unigram') {
    if (!Array.isArray(vocab))
      fail('model.vocab', `is ${describeJson(vocab)}`, 'an array of [token, score] pairs');
    (vocab as unknown[]).forEach((entry, i) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
        fail(`model.vocab[${i}]`, `is ${JSON.stringify(entry)}`, 'a [token, score] pair');
      }
    });
    return;
  }
  if (!isJsonObject(vocab)) {
    fail(
      'model.vocab',
      vocab === undefined ? 'is missing' : `is ${describeJson(vocab)}`,
      'an object token → id',
    );
  }
  for (const [token, id] of Object.entries(vocab as JsonObject)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      fail(`model.vocab[${JSON.stringify(token)}]`, `is ${describeJson(id)}`, 'a non-negative integer id');
    }
  }
}

function checkMerges(merges: unknown, fail: Fail): void {
  if (!Array.isArray(merges)) {
    fail(
      'model.merges',
      merges === undefined ? 'is missing' : `is ${describeJson(merges)}`,
      'an array of merges',
    );
  }
  (merges as unknown[]).forEach((merge, i) => {
    const ok =
      (typeof merge === 'string' && merge.split(' ').length === 2) ||
      (Array.isArray(merge) && merge.length === 2 && merge.every((part) => typeof part === 'string'));
    if (!ok) fail(`model.merges[${i}]`, `is ${JSON.stringify(merge)}`, '"left right" or ["left", "right"]');
  });
}

function checkComponent(config: unknown, component: Component, key: string, fail: Fail): void {
  if (!isJsonObject(config)) fail(key, `is ${describeJson(config)}`, 'an object with a "type", or null');
  const { type } = config as JsonObject;
  const valid: readonly string[] = COMPONENT_TYPES[component];
  if (typeof type !== 'string' || !valid.includes(type)) {
    fail(`${key}.type`, `${JSON.stringify(type)} is not supported`, validChoices(valid));
  }
  if (type !== 'Sequence') return;
  const childKey = SEQUENCE_KEYS[component];
  const children = (config as JsonObject)[childKey];
  if (!Array.isArray(children)) fail(`${key}.${childKey}`, `is ${describeJson(children)}`, 'an array');
  for (const [i, child] of (children as unknown[]).entries()) {
    checkComponent(child, component, `${key}.${childKey}[${i}]`, fail);
  }
}
