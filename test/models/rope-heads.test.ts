/** RoPE settings and frequency tables (the rope types parity fixtures do not cover), and the classifier pooling rules. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Graph } from '../../src/engine/ir/graph.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import { lastTokenIndex } from '../../src/models/heads.ts';
import { ropeInverseFrequencies, ropeSettings } from '../../src/models/rope.ts';
import { TlabError } from '../../src/util/errors.ts';
import { int64 } from './helpers.ts';

describe('RoPE', () => {
  test('transformers-4 and -5 spellings give the same settings; `type` is read as `rope_type`', () => {
    const old = ropeSettings(
      { rope_theta: 500, rope_scaling: { type: 'linear', factor: 2 }, max_position_embeddings: 8 },
      'c',
    );
    const neu = ropeSettings(
      { rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 500 }, max_position_embeddings: 8 },
      'c',
    );
    assert.deepEqual(old, neu);
    assert.deepEqual(ropeSettings({ max_position_embeddings: 8 }, 'c'), {
      type: 'default',
      theta: 10000,
      factor: 1,
    });
  });

  test('dynamic NTK: default frequencies within the original context, a larger base beyond it', () => {
    const rope = ropeSettings(
      { rope_theta: 10000, rope_scaling: { rope_type: 'dynamic', factor: 2 }, max_position_embeddings: 16 },
      'c',
    );
    const dim = 8;
    const plain = Array.from({ length: 4 }, (_, i) => 1 / 10000 ** ((2 * i) / dim));
    assert.deepEqual(ropeInverseFrequencies(rope, dim, 16, 16), plain);
    const base = 10000 * ((2 * 32) / 16 - 1) ** (dim / (dim - 2));
    const scaled = ropeInverseFrequencies(rope, dim, 16, 32);
    scaled.forEach((f, i) => {
      assert.ok(Math.abs(f - 1 / base ** ((2 * i) / dim)) < 1e-15, `frequency ${i}`);
    });
  });

  test('missing scaling fields and unsupported types are named', () => {
    assert.throws(
      () =>
        ropeSettings(
          { rope_scaling: { rope_type: 'llama3', factor: 8 }, max_position_embeddings: 8 },
          'f.json',
        ),
      (e: Error) =>
        e instanceof TlabError && e.message.startsWith('f.json: rope_scaling.low_freq_factor: missing'),
    );
    assert.throws(
      () =>
        ropeSettings({ rope_parameters: { rope_type: 'longrope' }, max_position_embeddings: 8 }, 'f.json'),
      (e: Error) => e instanceof TlabError && e.message.includes('rope_parameters.rope_type'),
    );
  });
});

describe('sequence classification pooling', () => {
  test('rightmost non-pad token (left and right padding), attention mask without a pad id, else the last position', async () => {
    const graph = new Graph();
    const ids = graph.input('ids', 'int64', [3, 5]);
    const mask = graph.input('mask', 'int64', [3, 5]);
    const program = await Program.compile(graph, {
      outputs: {
        byPad: lastTokenIndex(ids, 0),
        byMask: lastTokenIndex(ids, null, mask),
        last: lastTokenIndex(ids, null),
      },
    });
    const r = await program.run({
      ids: int64([3, 5], [4, 5, 6, 0, 0, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0]),
      mask: int64([3, 5], [1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]),
    });
    assert.deepEqual([...r.byPad.data].map(Number), [2, 4, 0]);
    assert.deepEqual([...r.byMask.data].map(Number), [1, 4, 2]);
    assert.deepEqual([...r.last.data].map(Number), [4, 4, 4]);
    await program.release();
  });
});
