/**
 * Two tiny tokenizer.json files built by hand, in the formats the Rust `tokenizers` library writes, with ids
 * small enough to compute expected encodings on paper.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes files (objects as JSON) into a new temporary folder and returns its path. */
export function writeTokenizerFolder(files: Record<string, string | object>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tlab-tok-'));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

/** GPT-2's byte → printable-character table: printable Latin-1 bytes map to themselves, the rest to U+0100.. in order. */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const order: number[] = [];
  for (let b = 0; b < 256; b++) if (printable(b)) order.push(b);
  for (let b = 0; b < 256; b++) if (!printable(b)) order.push(b);
  let next = 256;
  const table: string[] = [];
  for (let b = 0; b < 256; b++) table[b] = printable(b) ? String.fromCodePoint(b) : '';
  for (const b of order) if (!printable(b)) table[b] = String.fromCodePoint(next++);
  // GPT-2's vocabulary lists the 256 byte tokens in `order`, so a byte's id is its position there.
  return order.map((b) => table[b]);
}

/**
 * GPT-2 style byte-level BPE: ids 0..255 are the byte tokens, 256..264 the merges below (so "hello" = 259 and
 * " world" = "Ġworld" = 264), and <|endoftext|> = 265.
 */
export function tinyByteLevelBpe() {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((token, id) => {
    vocab[token] = id;
  });
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld'];
  merges.forEach((merge, i) => {
    vocab[merge.replace(' ', '')] = 256 + i;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 265,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

export const tinyByteLevelBpeConfig = {
  tokenizer_class: 'GPT2Tokenizer',
  bos_token: '<|endoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  add_prefix_space: false,
  clean_up_tokenization_spaces: false,
  model_max_length: 1024,
};

export const WORDPIECE_VOCAB = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  '[MASK]',
  'the',
  'cat',
  'sat',
  'play',
  '##ing',
  '##s',
  '.',
  'un',
  '##aff',
  '##able',
  'on',
  'mat',
];

/** BERT style WordPiece: lower-casing BertNormalizer, [CLS] $A [SEP] template; ids are positions in WORDPIECE_VOCAB. */
export function tinyWordPiece() {
  const vocab = Object.fromEntries(WORDPIECE_VOCAB.map((token, id) => [token, id]));
  const special = (id: number) => ({
    id,
    content: WORDPIECE_VOCAB[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2, 3, 4].map(special),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

export const tinyWordPieceConfig = {
  tokenizer_class: 'BertTokenizer',
  do_lower_case: true,
  cls_token: '[CLS]',
  sep_token: '[SEP]',
  pad_token: '[PAD]',
  unk_token: '[UNK]',
  mask_token: '[MASK]',
  clean_up_tokenization_spaces: true,
};
