/** Shared helpers for model tests: fixture folders, running a loaded model, comparing with references. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readSafetensors } from '../../src/engine/io/safetensors.ts';
import { Program } from '../../src/engine/runtime/session.ts';
import type { HostTensor } from '../../src/engine/tensor.ts';
import type { ModelFolder } from '../../src/models/hf/model-folder.ts';
import type { LoadedModel } from '../../src/models/hf/registry.ts';
import { inferenceGraph } from '../../src/models/inference-graph.ts';
import { maxRelDiff } from '../engine/helpers.ts';

export const FIXTURES = 'test/fixtures/models';

export function fixtureDir(name: string): string {
  return join(FIXTURES, name);
}

export function expected(name: string): Map<string, HostTensor> {
  return readSafetensors(join(FIXTURES, name, 'expected.safetensors'));
}

export function int64(shape: number[], values: ArrayLike<number | bigint>): HostTensor {
  return { dtype: 'int64', shape, data: BigInt64Array.from(Array.from(values, (v) => BigInt(v))) };
}

/** All-ones attention mask for ids [B, T]. */
export function onesMask(ids: HostTensor): HostTensor {
  return int64([...ids.shape], new Array(ids.data.length).fill(1));
}

/** Runs a model's inference graph (every hidden state included) with the given weights. */
export async function runModel(
  loaded: LoadedModel,
  weights: ReadonlyMap<string, HostTensor>,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const ids = feeds.input_ids;
  const pixels = feeds.pixel_values;
  const g = inferenceGraph(
    loaded,
    { batch: (ids ?? pixels).shape[0], seqLength: ids?.shape[1] },
    { hiddenStates: true },
  );
  const program = await Program.compile(g.graph, { outputs: g.outputs, bind: new Map(weights) });
  try {
    const all = { ...feeds };
    if (ids && !all.attention_mask) all.attention_mask = onesMask(ids);
    return await program.run(all);
  } finally {
    await program.release();
  }
}

/** Asserts that `actual` matches the reference to `tol` relative (max abs error / max |reference|); returns the error. */
export function assertClose(actual: HostTensor, reference: HostTensor, what: string, tol = 1e-4): number {
  assert.deepEqual([...actual.shape], [...reference.shape], `${what}: shape`);
  const err = maxRelDiff(actual.data as Float32Array, reference.data as Float32Array);
  assert.ok(err < tol, `${what}: relative error ${err.toExponential(2)} ≥ ${tol}`);
  return err;
}

/** Compares logits and every hidden state with a fixture's expected outputs; returns the worst error. */
export function assertMatchesFixture(
  out: Record<string, HostTensor>,
  ref: Map<string, HostTensor>,
  name: string,
): number {
  let worst = 0;
  for (const [key, value] of ref) {
    if (!/^(logits|hidden\.\d+|last_hidden|pooled|image_features)$/.test(key)) continue;
    const outName = key.startsWith('hidden.')
      ? `hidden_states.${key.slice(7)}`
      : key === 'last_hidden'
        ? 'last_hidden_state'
        : key === 'pooled'
          ? 'pooler_output'
          : key;
    if (!out[outName]) continue;
    worst = Math.max(worst, assertClose(out[outName], value, `${name} ${key}`));
  }
  return worst;
}

export type { ModelFolder };
