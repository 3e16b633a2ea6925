import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTokenizer } from '../../src/tokenize/hf-tokenizer.ts';
import { CharTokenizer, WordTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import type { TextTokenizer } from '../../src/tokenize/types.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'tlab-simple-tok-'));

/** Saves, loads back through the Hugging Face library path, and checks every observable agrees. */
function assertRoundTrip(built: CharTokenizer | WordTokenizer, texts: string[]): TextTokenizer {
  const dir = tempDir();
  built.save(dir);
  const loaded = loadTokenizer(dir);
  for (const text of texts) {
    for (const addSpecialTokens of [true, false]) {
      const ids = built.encode(text, { addSpecialTokens });
      assert.deepEqual(loaded.encode(text, { addSpecialTokens }), ids, `ids of ${JSON.stringify(text)}`);
      assert.equal(loaded.decode(ids), built.decode(ids));
      assert.equal(
        loaded.decode(ids, { skipSpecialTokens: true }),
        built.decode(ids, { skipSpecialTokens: true }),
      );
    }
  }
  for (const key of ['vocabSize', 'bosId', 'eosId', 'padId', 'unkId'] as const)
    assert.equal(loaded[key], built[key], key);
  assert.deepEqual([...loaded.getVocab()], [...built.getVocab()]);
  return loaded;
}

test('character tokenizer: specials first, then characters by code point; unknown code points → <unk>', () => {
  const tok = CharTokenizer.build({ corpus: ['abc', 'cab!'], extraSpecialTokens: ['<image>'] });
  assert.deepEqual(
    [...tok.getVocab()],
    [
      ['<pad>', 0],
      ['<bos>', 1],
      ['<eos>', 2],
      ['<unk>', 3],
      ['<image>', 4],
      ['!', 5],
      ['a', 6],
      ['b', 7],
      ['c', 8],
    ],
  );
  assert.deepEqual(tok.encode('cab'), [8, 6, 7]);
  // Special tokens in the text are matched whole; z and the emoji (one code point, two UTF-16 units) are unknown.
  assert.deepEqual(tok.encode('<bos>ab<image>z😀'), [1, 6, 7, 4, 3, 3]);
  assert.equal(tok.decode([1, 6, 7, 4, 3]), '<bos>ab<image><unk>');
  assert.equal(tok.decode([1, 6, 7, 4, 2], { skipSpecialTokens: true }), 'ab');
  assert.deepEqual([tok.padId, tok.bosId, tok.eosId, tok.unkId, tok.vocabSize], [0, 1, 2, 3, 9]);
  assert.equal(tok.imageTokenId, 4);
  assert.deepEqual(tok.stopIds, [2]);
});

test('character tokenizer: whitespace and non-BMP characters are single tokens; decode restores the text', () => {
  const text = 'a b\n\tc😀é';
  const tok = CharTokenizer.build({ corpus: [text] });
  assert.equal(tok.encode(text).length, [...text].length);
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.deepEqual([...tok.getVocab().keys()].slice(4), ['\t', '\n', ' ', 'a', 'b', 'c', 'é', '😀']);
});

test('character tokenizer: explicit characters, BOS/EOS added by the post-processor, no pad token', () => {
  const tok = CharTokenizer.build({
    characters: '0123456789+=',
    specialTokens: { pad: null },
    addBos: true,
    addEos: true,
  });
  assert.deepEqual([tok.bosId, tok.eosId, tok.unkId, tok.padId], [0, 1, 2, undefined]);
  // bos 0, eos 1, unk 2; '+' (U+002B) = 3 sorts before the digits 4..13, '=' (U+003D) = 14 after them.
  assert.deepEqual(tok.encode('1+2=3'), [0, 5, 3, 6, 14, 7, 1]);
  assert.deepEqual(tok.encode('1+2=3', { addSpecialTokens: false }), [5, 3, 6, 14, 7]);
  assert.equal(tok.decode(tok.encode('12+30=42'), { skipSpecialTokens: true }), '12+30=42');
  // EOS stands in for the missing pad token.
  const batch = tok.encodeBatch(['1', '12']);
  assert.deepEqual([...batch.ids], [0, 5, 1, 1, 0, 5, 6, 1]);
  assert.throws(
    () => CharTokenizer.build({ characters: ['ab'] }),
    /characters: "ab" is not a single character/,
  );
  assert.throws(
    () => CharTokenizer.build({ specialTokens: { bos: null }, addBos: true }),
    /addBos needs a bos special token/,
  );
  assert.throws(
    () => CharTokenizer.build({ extraSpecialTokens: ['<pad>'] }),
    /special token "<pad>" is given twice/,
  );
});

test('character tokenizer saves as a tokenizer.json that loads back with identical ids', () => {
  const tok = CharTokenizer.build({
    corpus: ['hello world', 'the quick brown fox\n'],
    extraSpecialTokens: ['<image>', '<sep>'],
    addEos: true,
    chatTemplate: '{% for m in messages %}{{ m.role }}: {{ m.content }}<sep>{% endfor %}',
  });
  const loaded = assertRoundTrip(tok, ['hello', 'fox<sep>the<image>', 'unknown: ZZZ', '', ' \n ']);
  const messages = [{ role: 'user', content: 'hello' }];
  assert.equal(loaded.applyChatTemplate(messages), 'user: hello<sep>');
  assert.deepEqual(loaded.encodeChat(messages), tok.encodeChat(messages));
});

test('the saved character tokenizer.json is a WordLevel model with a character Split pre-tokenizer and Fuse decoder', () => {
  const dir = tempDir();
  CharTokenizer.build({ corpus: ['ab'] }).save(dir);
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  assert.deepEqual(json.model, {
    type: 'WordLevel',
    vocab: { '<pad>': 0, '<bos>': 1, '<eos>': 2, '<unk>': 3, a: 4, b: 5 },
    unk_token: '<unk>',
  });
  assert.deepEqual(json.pre_tokenizer, {
    type: 'Split',
    pattern: { Regex: '[\\s\\S]' },
    behavior: 'Isolated',
    invert: false,
  });
  assert.deepEqual(json.decoder, { type: 'Fuse' });
  assert.equal(json.added_tokens.length, 4);
  assert.ok(
    json.added_tokens.every((t: { special: boolean; normalized: boolean }) => t.special && !t.normalized),
  );
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  assert.equal(config.tokenizer_class, 'PreTrainedTokenizerFast');
  assert.equal(config.eos_token, '<eos>');
  assert.equal(config.clean_up_tokenization_spaces, false);
});

test('word tokenizer: words by descending count, then code-unit order; unknown words → <unk>', () => {
  const tok = WordTokenizer.build({ corpus: ['the cat sat', 'the dog sat', 'the cat', 'a  cat\tsat'] });
  // the ×3, cat ×3, sat ×3 tie → alphabetical; then a ×1, dog ×1.
  assert.deepEqual([...tok.getVocab().keys()].slice(4), ['cat', 'sat', 'the', 'a', 'dog']);
  assert.deepEqual(tok.encode('the bird sat'), [6, 3, 5]);
  assert.equal(tok.decode([6, 3, 5]), 'the <unk> sat');
  assert.equal(tok.decode([1, 6, 4, 2], { skipSpecialTokens: true }), 'the cat');
});

test('word tokenizer: lowercase, punctuation split, explicit words, minCount and maxVocabSize', () => {
  const corpus = ['The cat sat.', 'the cat ran!', 'A dog ran.'];
  const tok = WordTokenizer.build({
    corpus,
    lowercase: true,
    splitPunctuation: true,
    words: ['zebra'],
    minCount: 2,
  });
  // zebra (explicit) first; then the ×2, cat ×2, ran ×2, . ×2 by count and code-unit order ('.' < letters).
  assert.deepEqual([...tok.getVocab().keys()].slice(4), ['zebra', '.', 'cat', 'ran', 'the']);
  assert.deepEqual(tok.encode('The cat ran.'), [8, 6, 7, 5]);
  assert.deepEqual(tok.encode('<bos>The zebra!'), [1, 8, 4, 3]);
  const small = WordTokenizer.build({ corpus, lowercase: true, maxVocabSize: 6 });
  assert.equal(small.vocabSize, 6);
  assert.throws(() => WordTokenizer.build({ words: ['two words'] }), /can never be produced by the splitter/);
  assert.throws(
    () => WordTokenizer.build({ words: ['a', 'b'], maxVocabSize: 5 }),
    /smaller than the 4 special tokens plus 2 explicit words/,
  );
  assertRoundTrip(tok, ['The cat ran.', 'THE ZEBRA!', 'unseen words here', '<eos>']);
});
