import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { HfTextTokenizer, loadTokenizer } from '../../src/tokenize/hf-tokenizer.ts';
import {
  bytesToUnicode,
  tinyByteLevelBpe,
  tinyByteLevelBpeConfig,
  tinyWordPiece,
  tinyWordPieceConfig,
  writeTokenizerFolder,
} from './tiny-tokenizers.ts';

const bpeFolder = writeTokenizerFolder({
  'tokenizer.json': tinyByteLevelBpe(),
  'tokenizer_config.json': tinyByteLevelBpeConfig,
  'generation_config.json': { bos_token_id: 265, eos_token_id: [265, 71] },
});
const wordPieceFolder = writeTokenizerFolder({
  'tokenizer.json': tinyWordPiece(),
  'tokenizer_config.json': tinyWordPieceConfig,
});

test('the byte table of the hand-built BPE matches GPT-2 (space = Ġ = 220, newline = Ċ = 198)', () => {
  const table = bytesToUnicode();
  assert.equal(table.length, 256);
  assert.equal(table.indexOf('Ġ'), 220);
  assert.equal(table.indexOf('Ċ'), 198);
  assert.equal(table[0], '!');
});

test('byte-level BPE: merges, bytes of non-ASCII text, special token, decode', () => {
  const tok = loadTokenizer(bpeFolder);
  // hello = 259 and " world" = Ġworld = 264 after the merge chains; h, i = bytes 104, 105 at ids 71, 72.
  assert.deepEqual(tok.encode('hello world'), [259, 264]);
  assert.deepEqual(tok.encode('hello world<|endoftext|>'), [259, 264, 265]);
  assert.deepEqual(tok.encode('hi'), [71, 72]);
  // é = bytes C3 A9 → ids 106 + (0xC3 - 174) = 127 and 94 + (0xA9 - 161) = 102.
  assert.deepEqual(tok.encode('é'), [127, 102]);
  assert.deepEqual(tok.encode('hello  world\n'), [259, 220, 264, 198]);
  assert.deepEqual(tok.tokenize('hello world'), ['hello', 'Ġworld']);
  assert.equal(tok.decode([259, 264, 265]), 'hello world<|endoftext|>');
  assert.equal(tok.decode([259, 264, 265], { skipSpecialTokens: true }), 'hello world');
  assert.equal(tok.decode(tok.encode('héllo wörld ✓')), 'héllo wörld ✓');
  assert.equal(tok.decode([]), '');
  assert.throws(
    () => tok.decode([266]),
    /cannot decode token id 266: not in the vocabulary \(ids 0\.\.265\)/,
  );
});

test('byte-level BPE: vocabulary size, special ids from the config, stop ids from generation_config.json', () => {
  const tok = loadTokenizer(join(bpeFolder, 'tokenizer.json'));
  assert.equal(tok.vocabSize, 266);
  assert.equal(tok.bosId, 265);
  assert.equal(tok.eosId, 265);
  assert.equal(tok.padId, undefined);
  assert.deepEqual(tok.stopIds, [265, 71]);
  assert.equal(tok.tokenToId('Ġworld'), 264);
  assert.equal(tok.idToToken(259), 'hello');
  assert.equal(tok.idToToken(999), undefined);
});

test('byte-level BPE batch: no pad token → pads with EOS; left padding for generation', () => {
  const tok = loadTokenizer(bpeFolder);
  const right = tok.encodeBatch(['hello world', 'hi hello world']);
  // " hello" is Ġ h e l l o: "hello" merges, but no merge joins Ġ to it.
  assert.deepEqual(tok.encode('hi hello world'), [71, 72, 220, 259, 264]);
  assert.equal(right.length, 5);
  assert.deepEqual([...right.ids], [259, 264, 265, 265, 265, 71, 72, 220, 259, 264]);
  assert.deepEqual([...right.attentionMask], [1, 1, 0, 0, 0, 1, 1, 1, 1, 1]);
  const left = tok.encodeBatch(['hello world', 'hi hello world'], { paddingSide: 'left', padId: 0 });
  assert.deepEqual([...left.ids], [0, 0, 0, 259, 264, 71, 72, 220, 259, 264]);
  assert.deepEqual([...left.attentionMask], [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(left.lengths, [2, 5]);
});

test('WordPiece: lower-casing, sub-words, [UNK], [CLS]/[SEP] from the post-processor', () => {
  const tok = loadTokenizer(wordPieceFolder);
  assert.deepEqual(tok.encode('The cat sat.'), [2, 5, 6, 7, 11, 3]);
  assert.deepEqual(tok.encode('The cat sat.', { addSpecialTokens: false }), [5, 6, 7, 11]);
  assert.deepEqual(tok.encode('unaffable playing cats'), [2, 12, 13, 14, 8, 9, 6, 10, 3]);
  assert.deepEqual(tok.encode('dog'), [2, 1, 3]);
  assert.equal(tok.decode([2, 5, 6, 7, 11, 3]), '[CLS] the cat sat. [SEP]');
  assert.equal(tok.decode([2, 12, 13, 14, 8, 9, 3], { skipSpecialTokens: true }), 'unaffable playing');
  assert.equal(tok.padId, 0);
  assert.equal(tok.unkId, 1);
  assert.equal(tok.bosId, undefined);
  assert.equal(tok.vocabSize, 17);
});

test('WordPiece batch: padding right, max_length, truncation keeps [CLS] and [SEP]', () => {
  const tok = loadTokenizer(wordPieceFolder);
  const batch = tok.encodeBatch(['the cat', 'unaffable playing cats']);
  assert.equal(batch.batchSize, 2);
  assert.equal(batch.length, 9);
  assert.deepEqual([...batch.ids.subarray(0, 9)], [2, 5, 6, 3, 0, 0, 0, 0, 0]);
  assert.deepEqual([...batch.attentionMask.subarray(0, 9)], [1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual([...batch.ids.subarray(9)], [2, 12, 13, 14, 8, 9, 6, 10, 3]);

  const cut = tok.encodeBatch(['the cat', 'unaffable playing cats'], { maxLength: 5 });
  assert.deepEqual([...cut.ids], [2, 5, 6, 3, 0, 2, 12, 13, 14, 3]);
  const cutLeft = tok.encodeBatch(['unaffable playing cats'], { maxLength: 5, truncationSide: 'left' });
  assert.deepEqual([...cutLeft.ids], [2, 9, 6, 10, 3]);

  const fixed = tok.encodeBatch(['the cat'], { padding: 'max_length', maxLength: 6 });
  assert.deepEqual([...fixed.ids], [2, 5, 6, 3, 0, 0]);
  assert.throws(() => tok.encodeBatch(['the'], { padding: 'max_length' }), /needs maxLength/);
  assert.throws(
    () => tok.encodeBatch(['the cat'], { maxLength: 1 }),
    /leaves no room for text after 2 special tokens/,
  );
  assert.throws(
    () =>
      tok.encodeBatch(['the cat sat on the mat', 'the'], {
        truncation: false,
        maxLength: 3,
        padding: 'max_length',
      }),
    /more than the padded length 3/,
  );
});

test('a tokenizer without pad and EOS cannot pad a ragged batch', () => {
  const tok = HfTextTokenizer.fromJson(tinyByteLevelBpe(), {});
  assert.throws(() => tok.encodeBatch(['hi', 'hello world hi']), /neither a pad token nor an EOS token/);
  assert.equal(tok.encodeBatch(['hi', 'hi']).length, 2);
});

test('special tokens written as AddedToken objects and special_tokens_map.json are understood', () => {
  const dir = writeTokenizerFolder({
    'tokenizer.json': tinyWordPiece(),
    'tokenizer_config.json': { unk_token: { __type: 'AddedToken', content: '[UNK]', lstrip: false } },
    'special_tokens_map.json': { pad_token: { content: '[PAD]' }, mask_token: '[MASK]' },
  });
  const tok = loadTokenizer(dir);
  assert.equal(tok.unkId, 1);
  assert.equal(tok.padId, 0);
});
