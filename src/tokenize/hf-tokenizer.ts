/**
 * Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) loaded from local files only, through
 * @huggingface/tokenizers, behind the project's TextTokenizer interface.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import {
  describeJson,
  isJsonObject,
  type JsonObject,
  readJsonFile,
  readJsonObject,
} from '../util/json-file.ts';
import { padRows, splitSpecials, truncateKeepingSpecials } from './batch.ts';
import {
  ChatTemplates,
  chatTemplatesFromValue,
  flattenContentParts,
  type ImagePlaceholder,
  loadChatTemplates,
} from './chat-template.ts';
import { type TokenizerJson, validateTokenizerJson } from './tokenizer-json.ts';
import type {
  BatchEncodeOptions,
  BatchEncoding,
  ChatMessage,
  ChatTemplateOptions,
  DecodeOptions,
  EncodeOptions,
  TextTokenizer,
} from './types.ts';

/**
 * The part of @huggingface/tokenizers@0.2.0 used here. Its published .d.ts files use extension-less relative
 * imports that NodeNext resolution cannot follow, so its types arrive as `any`; this keeps our calls typed.
 */
interface LibraryTokenizer {
  encode(
    text: string,
    options: { add_special_tokens: boolean },
  ): { ids: (number | undefined)[]; tokens: string[] };
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
  token_to_id(token: string): number | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}

const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'pad_token',
  'sep_token',
  'cls_token',
  'mask_token',
];

export interface LoadTokenizerOptions {
  /** What an image content part becomes in chat text; default: tokenizer_config's image_token, else "<image>" if in the vocabulary. */
  imagePlaceholder?: ImagePlaceholder;
}

/** Everything a tokenizer is made of, validated. */
export interface HfTokenizerParts {
  tokenizerJson: TokenizerJson;
  /** tokenizer_config.json merged over special_tokens_map.json; special tokens as plain strings. */
  config: JsonObject;
  generationConfig?: JsonObject;
  chatTemplates?: ChatTemplates;
  /** Names the tokenizer in error messages (its folder, or a description). */
  source: string;
  imagePlaceholder?: ImagePlaceholder;
}

/**
 * Loads a tokenizer folder (or the folder of a given tokenizer.json): tokenizer.json is required;
 * tokenizer_config.json, special_tokens_map.json, generation_config.json and chat_template.{jinja,json} are
 * read when present. Nothing is fetched from the network.
 */
export function loadTokenizer(path: string, options: LoadTokenizerOptions = {}): HfTextTokenizer {
  if (!existsSync(path)) throw new TlabError(`${path}: tokenizer folder not found`);
  const isFile = statSync(path).isFile();
  const folder = isFile ? dirname(path) : path;
  const tokenizerPath = isFile ? path : join(folder, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) {
    const alternatives = ['vocab.json', 'merges.txt', 'vocab.txt', 'tokenizer.model', 'spiece.model'].filter(
      (name) => existsSync(join(folder, name)),
    );
    throw new TlabError(
      `${tokenizerPath}: file not found`,
      alternatives.length > 0
        ? `the folder has ${alternatives.join(', ')}: only the fast-tokenizer format tokenizer.json is read; save it with transformers' tokenizer.save_pretrained()`
        : 'a tokenizer folder needs tokenizer.json (tokenizer_config.json and the others are optional)',
    );
  }
  const tokenizerJson = validateTokenizerJson(readJsonFile(tokenizerPath), tokenizerPath);
  const configPath = join(folder, 'tokenizer_config.json');
  const mapPath = join(folder, 'special_tokens_map.json');
  const generationPath = join(folder, 'generation_config.json');
  const specialMap = existsSync(mapPath) ? normalizeSpecialTokens(readJsonObject(mapPath), mapPath) : {};
  const rawConfig = existsSync(configPath) ? readJsonObject(configPath) : {};
  const config = { ...dropUnset(specialMap), ...dropUnset(normalizeSpecialTokens(rawConfig, configPath)) };
  return new HfTextTokenizer({
    tokenizerJson,
    config,
    generationConfig: existsSync(generationPath) ? readJsonObject(generationPath) : undefined,
    chatTemplates: loadChatTemplates(folder, rawConfig),
    source: isFile ? tokenizerPath : folder,
    imagePlaceholder: options.imagePlaceholder,
  });
}

export class HfTextTokenizer implements TextTokenizer {
  readonly tokenizerJson: TokenizerJson;
  readonly config: JsonObject;
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly unkId: number | undefined;
  readonly stopIds: readonly number[];
  readonly imagePlaceholder: ImagePlaceholder | undefined;
  private readonly library: LibraryTokenizer;
  private readonly chatTemplates: ChatTemplates;
  private readonly idToTokenTable: (string | undefined)[];

  constructor(parts: HfTokenizerParts) {
    this.tokenizerJson = parts.tokenizerJson;
    this.source = parts.source;
    this.chatTemplates = parts.chatTemplates ?? new ChatTemplates();
    const model = parts.tokenizerJson.model;
    // WordLevel falls into the library's "Legacy" model, which takes its unknown token from the config.
    const unkDefault = typeof model.unk_token === 'string' ? { unk_token: model.unk_token } : {};
    this.config = { ...unkDefault, ...dropUnset(parts.config) };
    try {
      this.library = new Tokenizer(this.tokenizerJson, this.config);
    } catch (error) {
      throw new TlabError(
        `${this.source}: @huggingface/tokenizers could not build the tokenizer: ${(error as Error).message}`,
      );
    }
    const vocab = this.library.get_vocab(true);
    this.idToTokenTable = [];
    for (const [token, id] of vocab) this.idToTokenTable[id] = token;
    this.vocabSize = this.idToTokenTable.length;

    const generation = parts.generationConfig ?? {};
    const idOf = (key: string, generationKey: string): number | undefined => {
      const token = this.config[key];
      const fromToken = typeof token === 'string' ? this.tokenToId(token) : undefined;
      return fromToken ?? firstId(generation[generationKey]);
    };
    this.bosId = idOf('bos_token', 'bos_token_id');
    this.eosId = idOf('eos_token', 'eos_token_id');
    this.padId = idOf('pad_token', 'pad_token_id');
    this.unkId = idOf('unk_token', 'unk_token_id');
    const generationEos = generation.eos_token_id;
    const stops = [this.eosId, ...(Array.isArray(generationEos) ? generationEos : [generationEos])];
    this.stopIds = [...new Set(stops.filter((id): id is number => Number.isInteger(id)))];

    const imageToken = typeof this.config.image_token === 'string' ? this.config.image_token : undefined;
    this.imagePlaceholder =
      parts.imagePlaceholder ??
      (imageToken !== undefined ? { token: imageToken } : undefined) ??
      (this.tokenToId('<image>') !== undefined ? { token: '<image>' } : undefined);
  }

  /** Builds a tokenizer from in-memory JSON (validated like a file), e.g. one made for a synthetic task. */
  static fromJson(
    tokenizerJson: unknown,
    config: JsonObject = {},
    source = 'tokenizer.json (in memory)',
  ): HfTextTokenizer {
    return new HfTextTokenizer({
      tokenizerJson: validateTokenizerJson(tokenizerJson, source),
      config: normalizeSpecialTokens(config, `${source} config`),
      chatTemplates: chatTemplatesFromValue(config.chat_template, `${source} config: chat_template`),
      source,
    });
  }

  /** Id of the image placeholder token, for models that splice image features into the embeddings. */
  get imageTokenId(): number | undefined {
    return this.imagePlaceholder ? this.tokenToId(this.imagePlaceholder.token) : undefined;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const { ids, tokens } = this.library.encode(text, {
      add_special_tokens: options.addSpecialTokens ?? true,
    });
    const missing = ids.findIndex((id) => id === undefined || id === null);
    if (missing >= 0) {
      throw new TlabError(
        `${this.source}: the token ${JSON.stringify(tokens[missing])} is not in the vocabulary and the tokenizer has no unknown token`,
      );
    }
    return ids as number[];
  }

  /** The token strings of `text` (for inspection and tests). */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    return this.library.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).tokens;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids, Number);
    const bad = list.find((id) => !Number.isInteger(id) || this.idToTokenTable[id] === undefined);
    if (bad !== undefined) {
      throw new TlabError(
        `${this.source}: cannot decode token id ${bad}: not in the vocabulary (ids 0..${this.vocabSize - 1})`,
      );
    }
    if (list.length === 0) return '';
    return this.library.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.library.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id];
  }

  /** token → id, added tokens included. */
  getVocab(): Map<string, number> {
    return this.library.get_vocab(true);
  }

  encodeBatch(texts: readonly string[], options: BatchEncodeOptions = {}): BatchEncoding {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const { maxLength } = options;
    const truncation = options.truncation ?? maxLength !== undefined;
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) {
      throw new TlabError(`maxLength must be a positive integer, got ${maxLength}`);
    }
    if (options.padding === 'max_length' && maxLength === undefined) {
      throw new TlabError(`padding 'max_length' needs maxLength`);
    }
    const rows = texts.map((text) => {
      const ids = this.encode(text, { addSpecialTokens });
      if (!truncation || maxLength === undefined || ids.length <= maxLength) return ids;
      const side = options.truncationSide ?? 'right';
      const content = addSpecialTokens ? this.encode(text, { addSpecialTokens: false }) : ids;
      const parts = addSpecialTokens ? splitSpecials(ids, content) : { prefix: [], suffix: [] };
      return parts
        ? truncateKeepingSpecials(parts.prefix, content, parts.suffix, maxLength, side)
        : truncateKeepingSpecials([], ids, [], maxLength, side);
    });
    return padRows(rows, {
      length: options.padding === 'max_length' ? maxLength : undefined,
      side: options.paddingSide ?? 'right',
      padId: options.padId ?? this.padId ?? this.eosId,
    });
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplates.size > 0;
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const template = this.chatTemplates.select(options.templateName, this.source);
    const rendered = options.keepContentParts
      ? [...messages]
      : flattenContentParts(messages, this.imagePlaceholder);
    const specials: Record<string, string> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const value = this.config[key];
      if (typeof value === 'string') specials[key] = value;
    }
    return template.render({
      ...specials,
      messages: rendered,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      tools: options.tools ?? null,
      documents: null,
      ...options.extra,
    });
  }

  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  /**
   * Writes tokenizer.json and tokenizer_config.json into `folder` (atomically), chat templates included in the
   * config, so that loadTokenizer(folder) gives the same tokenizer.
   */
  save(folder: string): void {
    const config: JsonObject = { ...this.config };
    const templates = this.chatTemplates.entries();
    if (templates.length === 1 && templates[0].name === 'default')
      config.chat_template = templates[0].template;
    else if (templates.length > 0) config.chat_template = templates;
    if (this.imagePlaceholder && config.image_token === undefined)
      config.image_token = this.imagePlaceholder.token;
    writeJsonAtomic(join(folder, 'tokenizer.json'), this.tokenizerJson);
    writeJsonAtomic(join(folder, 'tokenizer_config.json'), config);
  }
}

/** Writes a chat template as chat_template.jinja beside a saved tokenizer (the format newer transformers use). */
export function saveChatTemplate(folder: string, template: string): void {
  writeFileAtomic(join(folder, 'chat_template.jinja'), template);
}

/** Special tokens may be written as strings or as AddedToken objects ({"content": ...}); keep the strings. */
function normalizeSpecialTokens(config: JsonObject, file: string): JsonObject {
  const out: JsonObject = { ...config };
  for (const key of SPECIAL_TOKEN_KEYS) out[key] = tokenString(config[key], key, file);
  if (config.additional_special_tokens !== undefined) {
    const extra = config.additional_special_tokens;
    if (!Array.isArray(extra)) {
      throw new TlabError(
        `${file}: additional_special_tokens is ${describeJson(extra)}; valid: a list of tokens`,
      );
    }
    out.additional_special_tokens = extra.map((token, i) =>
      tokenString(token, `additional_special_tokens[${i}]`, file),
    );
  }
  return out;
}

function tokenString(value: unknown, key: string, file: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content;
  throw new TlabError(
    `${file}: ${key} is ${describeJson(value)}; valid: a token string or {"content": "<token>"}`,
  );
}

function dropUnset(config: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(config).filter(([, value]) => value !== undefined));
}

function firstId(value: unknown): number | undefined {
  const id = Array.isArray(value) ? value[0] : value;
  return Number.isInteger(id) ? (id as number) : undefined;
}
