import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closestMatches, didYouMean } from '../../src/util/did-you-mean.ts';

test('did-you-mean: typos find their name, unrelated words find nothing', () => {
  const keys = ['n_layer', 'n_head', 'n_embd', 'vocab_size', 'n_positions'];
  assert.deepEqual(closestMatches('n_layr', keys), ['n_layer']);
  assert.deepEqual(closestMatches('N_HEAD', keys), ['n_head'], 'case-insensitive');
  assert.deepEqual(closestMatches('vocab_sizes', keys), ['vocab_size']);
  assert.deepEqual(closestMatches('lr', ['eps', 'betas']), []);
  assert.equal(didYouMean('biuld', ['build', 'inspect']), " (did you mean 'build'?)");
  assert.equal(didYouMean('n_hed', ['n_head', 'n_heads']), " (did you mean 'n_head' or 'n_heads'?)");
  assert.equal(didYouMean('zzz', ['build']), '');
});
