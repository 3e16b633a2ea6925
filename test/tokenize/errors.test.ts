import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTokenizer } from '../../src/tokenize/hf-tokenizer.ts';
import { TlabError } from '../../src/util/errors.ts';
import { tinyByteLevelBpe, tinyWordPiece, writeTokenizerFolder } from './tiny-tokenizers.ts';

/** Asserts a TlabError whose message matches `pattern`. */
function throwsTlab(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TlabError, `expected TlabError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

test('a missing folder or tokenizer.json names the path; other tokenizer files are pointed out', () => {
  throwsTlab(
    () => loadTokenizer('/no/such/tokenizer'),
    /^\/no\/such\/tokenizer: tokenizer folder not found$/,
  );
  const dir = writeTokenizerFolder({ 'vocab.json': {}, 'merges.txt': '#version: 0.2\n' });
  assert.throws(
    () => loadTokenizer(dir),
    (error: TlabError) =>
      error.message === `${join(dir, 'tokenizer.json')}: file not found` &&
      /vocab\.json, merges\.txt/.test(error.details ?? ''),
  );
});

test('JSON that does not parse: the file, line and column', () => {
  const dir = writeTokenizerFolder({ 'tokenizer.json': '{\n  "model": {\n    "type": "BPE",,\n  }\n}\n' });
  throwsTlab(() => loadTokenizer(dir), /tokenizer\.json: not valid JSON at line 3, column 19: /);
  const bad = writeTokenizerFolder({
    'tokenizer.json': tinyWordPiece(),
    'tokenizer_config.json': '{"unk_token": [UNK]}',
  });
  throwsTlab(
    () => loadTokenizer(bad),
    /tokenizer_config\.json: not valid JSON at line 1, column 16: Unexpected token .U./,
  );
});

test('an unknown model.type names the file, the key and the valid types', () => {
  const json = { ...tinyWordPiece(), model: { ...tinyWordPiece().model, type: 'Foo' } };
  const dir = writeTokenizerFolder({ 'tokenizer.json': json });
  throwsTlab(
    () => loadTokenizer(dir),
    /tokenizer\.json: model\.type "Foo" is not supported; valid: BPE, WordPiece, WordLevel, Unigram$/,
  );
});

test('missing or malformed model parts name the key', () => {
  const bpe = tinyByteLevelBpe();
  const cases: [object, RegExp][] = [
    [
      { ...bpe, model: { type: 'BPE', merges: [] } },
      /tokenizer\.json: model\.vocab is missing; valid: an object token → id/,
    ],
    [{ ...bpe, model: { ...bpe.model, merges: undefined } }, /tokenizer\.json: model\.merges is missing/],
    [{ ...bpe, model: { ...bpe.model, merges: ['h e', 'oops'] } }, /model\.merges\[1\] is "oops"/],
    [{ ...bpe, model: { ...bpe.model, vocab: { a: 0, b: -1 } } }, /model\.vocab\["b"\] is number -1/],
    [
      { ...bpe, model: undefined },
      /tokenizer\.json: model is nothing; valid: an object with "type" and "vocab"/,
    ],
    [[1, 2], /tokenizer\.json: \(top level\) is an array/],
    [{ ...bpe, added_tokens: [{ id: 'x', content: 'a' }] }, /added_tokens\[0\]\.id is the string "x"/],
    [
      { ...bpe, pre_tokenizer: { type: 'UnicodeScripts' } },
      /pre_tokenizer\.type "UnicodeScripts" is not supported; valid: BertPreTokenizer,/,
    ],
    [
      { ...bpe, decoder: { type: 'Sequence', decoders: [{ type: 'ByteLevel' }, { type: 'Nope' }] } },
      /decoder\.decoders\[1\]\.type "Nope" is not supported/,
    ],
    [
      { ...tinyWordPiece(), model: { ...tinyWordPiece().model, unk_token: undefined } },
      /model\.unk_token is nothing/,
    ],
    [
      { ...bpe, model: { type: 'Unigram', vocab: [['a', -1], ['b']] } },
      /model\.vocab\[1\] is \["b"\]; valid: a \[token, score\] pair/,
    ],
  ];
  for (const [json, pattern] of cases)
    throwsTlab(() => loadTokenizer(writeTokenizerFolder({ 'tokenizer.json': json })), pattern);
});

test('a special token of the wrong kind in tokenizer_config.json names the key', () => {
  const dir = writeTokenizerFolder({
    'tokenizer.json': tinyWordPiece(),
    'tokenizer_config.json': { eos_token: 5 },
  });
  throwsTlab(
    () => loadTokenizer(dir),
    /tokenizer_config\.json: eos_token is number 5; valid: a token string/,
  );
  const arr = writeTokenizerFolder({ 'tokenizer.json': tinyWordPiece(), 'tokenizer_config.json': ['x'] });
  throwsTlab(
    () => loadTokenizer(arr),
    /tokenizer_config\.json: expected a JSON object at the top level, found an array/,
  );
});

test('a file without a model type is typed as the library would (old tokenizer.json files)', () => {
  const wp = tinyWordPiece();
  const { type: _type, ...untyped } = wp.model;
  const tok = loadTokenizer(writeTokenizerFolder({ 'tokenizer.json': { ...wp, model: untyped } }));
  assert.deepEqual(tok.encode('the cat'), [2, 5, 6, 3]);
});

test('a WordLevel tokenizer.json without tokenizer_config.json takes its unknown token from the model', () => {
  const json = {
    added_tokens: [{ id: 0, content: '<unk>', special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: { '<unk>': 0, hello: 1 }, unk_token: '<unk>' },
  };
  const tok = loadTokenizer(writeTokenizerFolder({ 'tokenizer.json': json }));
  assert.deepEqual(tok.encode('hello there'), [1, 0]);
  assert.equal(tok.unkId, 0);
});
