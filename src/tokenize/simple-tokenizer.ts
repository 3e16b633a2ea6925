/**
 * Character- and word-level tokenizers for synthetic tasks. They are ordinary Hugging Face tokenizer.json
 * files (a WordLevel model with a character-splitting or whitespace pre-tokenizer), so they go through the same
 * library path as pretrained tokenizers, save with `save(folder)` and load back with `loadTokenizer(folder)`.
 */
import { TlabError } from '../util/errors.ts';
import type { JsonObject } from '../util/json-file.ts';
import { chatTemplatesFromValue } from './chat-template.ts';
import { HfTextTokenizer, type HfTokenizerParts } from './hf-tokenizer.ts';
import { validateTokenizerJson } from './tokenizer-json.ts';

export interface SpecialTokenNames {
  /** null leaves the token out. */
  pad?: string | null;
  bos?: string | null;
  eos?: string | null;
  /** Unknown characters or words map here; required by the WordLevel model. */
  unk?: string;
}

export interface SimpleTokenizerOptions {
  /** Names of the standard special tokens; defaults <pad>, <bos>, <eos>, <unk>. */
  specialTokens?: SpecialTokenNames;
  /** More special tokens after the standard ones, e.g. ["<image>", "<sep>"]. */
  extraSpecialTokens?: readonly string[];
  /** Let encode() put BOS first / EOS last (with addSpecialTokens, the default). Default false. */
  addBos?: boolean;
  addEos?: boolean;
  /** A Jinja chat template stored in tokenizer_config.json. */
  chatTemplate?: string;
}

export interface CharTokenizerOptions extends SimpleTokenizerOptions {
  /** Texts whose characters (Unicode code points) form the vocabulary. */
  corpus?: Iterable<string>;
  /** Explicit characters (each one code point), added to those of the corpus. */
  characters?: Iterable<string>;
}

export interface WordTokenizerOptions extends SimpleTokenizerOptions {
  corpus?: Iterable<string>;
  /** Explicit words, kept whatever their count, before the corpus words. */
  words?: Iterable<string>;
  /** Lower-case text before splitting (a Lowercase normalizer); default false. */
  lowercase?: boolean;
  /** Split punctuation off words ("end." → "end", "."); default false: split on whitespace only. */
  splitPunctuation?: boolean;
  /** Drop corpus words seen fewer times; default 1. */
  minCount?: number;
  /** Largest vocabulary, special tokens included; the most frequent words are kept. */
  maxVocabSize?: number;
}

/** Splits text into single code points: Isolated matches of "any character" ([\s\S], one code point in both the Rust and JS regex engines). */
const CHARACTER_SPLIT = {
  type: 'Split',
  pattern: { Regex: '[\\s\\S]' },
  behavior: 'Isolated',
  invert: false,
};

export class CharTokenizer extends HfTextTokenizer {
  /** Builds the vocabulary from the characters of `corpus` and `characters`, sorted by code point. */
  static build(options: CharTokenizerOptions): CharTokenizer {
    const specials = specialTokenList(options);
    const chars = new Set<string>();
    for (const char of options.characters ?? []) {
      if ([...char].length !== 1) {
        throw new TlabError(
          `characters: ${JSON.stringify(char)} is not a single character; valid: one code point each`,
        );
      }
      chars.add(char);
    }
    const skeleton = new HfTextTokenizer(parts(options, specials, CHARACTER_SPLIT, null, [], 'char'));
    for (const text of options.corpus ?? []) {
      for (const token of skeleton.tokenize(text, { addSpecialTokens: false })) chars.add(token);
    }
    for (const special of specials.all) chars.delete(special);
    const sorted = [...chars].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new CharTokenizer(parts(options, specials, CHARACTER_SPLIT, null, sorted, 'char'));
  }
}

export class WordTokenizer extends HfTextTokenizer {
  /**
   * Builds the vocabulary from explicit `words`, then corpus words by descending count (ties in code-unit
   * order), split exactly as encode() will split them.
   */
  static build(options: WordTokenizerOptions): WordTokenizer {
    const specials = specialTokenList(options);
    const preTokenizer = options.splitPunctuation
      ? {
          type: 'Sequence',
          pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Isolated' }],
        }
      : { type: 'WhitespaceSplit' };
    const normalizer = options.lowercase ? { type: 'Lowercase' } : null;
    const explicit: string[] = [];
    for (const word of options.words ?? []) {
      if (word.length === 0 || /\s/.test(word)) {
        throw new TlabError(
          `words: ${JSON.stringify(word)} can never be produced by the splitter; valid: non-empty, no whitespace`,
        );
      }
      if (!explicit.includes(word)) explicit.push(word);
    }
    const skeleton = new HfTextTokenizer(parts(options, specials, preTokenizer, normalizer, [], 'word'));
    const counts = new Map<string, number>();
    for (const text of options.corpus ?? []) {
      for (const token of skeleton.tokenize(text, { addSpecialTokens: false })) {
        counts.set(token, (counts.get(token) ?? 0) + 1);
      }
    }
    const taken = new Set([...specials.all, ...explicit]);
    const minCount = options.minCount ?? 1;
    const ranked = [...counts]
      .filter(([word, count]) => count >= minCount && !taken.has(word))
      .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
      .map(([word]) => word);
    let vocabulary = [...explicit, ...ranked];
    if (options.maxVocabSize !== undefined) {
      const room = options.maxVocabSize - specials.all.length;
      if (room < explicit.length) {
        throw new TlabError(
          `maxVocabSize ${options.maxVocabSize} is smaller than the ${specials.all.length} special tokens plus ${explicit.length} explicit words`,
        );
      }
      vocabulary = vocabulary.slice(0, room);
    }
    return new WordTokenizer(parts(options, specials, preTokenizer, normalizer, vocabulary, 'word'));
  }
}

interface SpecialTokenList {
  pad?: string;
  bos?: string;
  eos?: string;
  unk: string;
  extra: string[];
  /** In id order: pad, bos, eos, unk, extras. */
  all: string[];
}

function specialTokenList(options: SimpleTokenizerOptions): SpecialTokenList {
  const names = options.specialTokens ?? {};
  const pick = (value: string | null | undefined, fallback: string) =>
    value === null ? undefined : (value ?? fallback);
  const list: SpecialTokenList = {
    pad: pick(names.pad, '<pad>'),
    bos: pick(names.bos, '<bos>'),
    eos: pick(names.eos, '<eos>'),
    unk: names.unk ?? '<unk>',
    extra: [...(options.extraSpecialTokens ?? [])],
    all: [],
  };
  list.all = [list.pad, list.bos, list.eos, list.unk, ...list.extra].filter(
    (t): t is string => t !== undefined,
  );
  const seen = new Set<string>();
  for (const token of list.all) {
    if (token.length === 0) throw new TlabError('special tokens must not be empty strings');
    if (seen.has(token)) throw new TlabError(`special token ${JSON.stringify(token)} is given twice`);
    seen.add(token);
  }
  if (options.addBos && !list.bos) throw new TlabError('addBos needs a bos special token');
  if (options.addEos && !list.eos) throw new TlabError('addEos needs an eos special token');
  return list;
}

function parts(
  options: SimpleTokenizerOptions,
  specials: SpecialTokenList,
  preTokenizer: JsonObject,
  normalizer: JsonObject | null,
  vocabulary: readonly string[],
  kind: 'char' | 'word',
): HfTokenizerParts {
  const vocab: Record<string, number> = {};
  [...specials.all, ...vocabulary].forEach((token, id) => {
    vocab[token] = id;
  });
  const addedTokens = specials.all.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor(options, specials, vocab),
    // Characters are glued back together; words are joined with spaces (what the library does with no decoder).
    decoder: kind === 'char' ? { type: 'Fuse' } : null,
    model: { type: 'WordLevel', vocab, unk_token: specials.unk },
  };
  const config: JsonObject = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    clean_up_tokenization_spaces: false,
    unk_token: specials.unk,
  };
  if (specials.pad) config.pad_token = specials.pad;
  if (specials.bos) config.bos_token = specials.bos;
  if (specials.eos) config.eos_token = specials.eos;
  if (specials.extra.length > 0) config.additional_special_tokens = specials.extra;
  if (options.chatTemplate !== undefined) config.chat_template = options.chatTemplate;
  const source = `${kind} tokenizer (in memory)`;
  return {
    tokenizerJson: validateTokenizerJson(tokenizerJson, source),
    config,
    chatTemplates: chatTemplatesFromValue(options.chatTemplate, `${source}: chat_template`),
    source,
  };
}

/** A TemplateProcessing post-processor wrapping the text in BOS/EOS, in the format the Rust library writes. */
function postProcessor(
  options: SimpleTokenizerOptions,
  specials: SpecialTokenList,
  vocab: Record<string, number>,
) {
  if (!options.addBos && !options.addEos) return null;
  const special = (token: string) => ({ SpecialToken: { id: token, type_id: 0 } });
  const sequence = (id: 'A' | 'B') => ({ Sequence: { id, type_id: 0 } });
  const wrap = (inner: object[]) => [
    ...(options.addBos ? [special(specials.bos!)] : []),
    ...inner,
    ...(options.addEos ? [special(specials.eos!)] : []),
  ];
  const used = [
    options.addBos ? specials.bos! : undefined,
    options.addEos ? specials.eos! : undefined,
  ].filter((t): t is string => t !== undefined);
  return {
    type: 'TemplateProcessing',
    single: wrap([sequence('A')]),
    pair: wrap([sequence('A'), sequence('B')]),
    special_tokens: Object.fromEntries(used.map((t) => [t, { id: t, ids: [vocab[t]], tokens: [t] }])),
  };
}
