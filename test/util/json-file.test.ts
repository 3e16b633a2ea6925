import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstJsonErrorOffset, parseJsonText } from '../../src/util/json-file.ts';

test('firstJsonErrorOffset points at the first character that breaks JSON', () => {
  const cases: [string, number][] = [
    ['{"a": abc}', 6],
    ['{"a": 1,}', 8],
    ['{"a": 1', 7],
    ['{"a": 1}}', 8],
    ['[1, 2 3]', 6],
    ['{"a": tru}', 9],
    ['"\\q"', 2],
    ['{"a": "\\u12G4"}', 11],
    ['-', 0],
    ['', 0],
  ];
  for (const [text, offset] of cases) {
    assert.throws(() => JSON.parse(text));
    assert.equal(firstJsonErrorOffset(text), offset, text);
  }
});

test('parseJsonText names the source, line and column, and accepts a byte-order mark', () => {
  assert.throws(() => parseJsonText('{\n  "a": 1\n  "b": 2\n}', 'conf.json'), {
    name: 'TlabError',
    message: "conf.json: not valid JSON at line 3, column 3: Expected ',' or '}' after property value",
  });
  assert.deepEqual(parseJsonText('\ufeff{"a": [1, null, true, "x"]}', 'b.json'), { a: [1, null, true, 'x'] });
});
