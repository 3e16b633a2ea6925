/**
 * Which source rows go to which output split, decided before any row is read: one byte per source row
 * (0 = not used, k = output split k), so sampling and splitting cost O(rows) bytes, never the rows themselves,
 * and the build can stream every source split once in order.
 */
import { TlabError, validChoices } from '../../util/errors.ts';
import { Rng } from '../../util/random.ts';
import { resplitFractions, type TaskConfig } from '../config.ts';
import type { SourceSplit } from '../sources/types.ts';

export interface SplitPlan {
  /** Output split names; code k in a selection means outputs[k - 1]. */
  outputs: string[];
  /** Source split → selection bytes (only source splits that contribute rows). */
  selections: Map<string, Uint8Array>;
  /** Rows selected per output split (before de-duplication). */
  selected: Record<string, number>;
}

export interface PlanContext {
  file: string;
  taskPath: string[];
  description: string;
}

function field(ctx: PlanContext, name: string): string {
  return `${ctx.file}: ${[...ctx.taskPath, name].join('.')}`;
}

/** The source splits the task uses and their output names. */
function chosenSplits(task: TaskConfig, sources: SourceSplit[], ctx: PlanContext): [string, string][] {
  const names = sources.map((s) => s.name);
  const pairs: [string, string][] = !task.splits
    ? names.map((n) => [n, n])
    : Array.isArray(task.splits)
      ? task.splits.map((n) => [n, n])
      : Object.entries(task.splits);
  for (const [, src] of pairs)
    if (!names.includes(src))
      throw new TlabError(
        `${field(ctx, 'splits')}: ${ctx.description} has no split '${src}'`,
        `splits: ${validChoices(names)}`,
      );
  return pairs;
}

function sampleSize(task: TaskConfig, n: number, out: string | undefined): number {
  if (task.sample_percent !== undefined)
    return n === 0 ? 0 : Math.max(1, Math.round(task.sample_percent * n));
  if (typeof task.n_samples === 'number') return Math.min(n, task.n_samples);
  if (task.n_samples && out !== undefined && task.n_samples[out] !== undefined)
    return Math.min(n, task.n_samples[out]);
  return n;
}

export function planSplits(task: TaskConfig, sources: SourceSplit[], ctx: PlanContext): SplitPlan {
  const pairs = chosenSplits(task, sources, ctx);
  const rows = new Map(sources.map((s) => [s.name, s.numRows]));
  const fractions = resplitFractions(task);
  const selections = new Map<string, Uint8Array>();
  const selected: Record<string, number> = {};

  if (!fractions) {
    const outputs = pairs.map(([out]) => out);
    if (new Set(outputs).size !== outputs.length)
      throw new TlabError(`${field(ctx, 'splits')}: names an output split twice`);
    if (outputs.length > 255) throw new TlabError(`${field(ctx, 'splits')}: more than 255 splits`);
    if (task.n_samples && typeof task.n_samples === 'object')
      for (const name of Object.keys(task.n_samples))
        if (!outputs.includes(name))
          throw new TlabError(
            `${field(ctx, 'n_samples')}: no output split '${name}'`,
            `splits: ${validChoices(outputs)}`,
          );
    pairs.forEach(([out, src], k) => {
      const n = rows.get(src) ?? 0;
      const take = sampleSize(task, n, out);
      const bytes = new Uint8Array(n);
      if (take === n) bytes.fill(k + 1);
      else for (const i of Rng.at(task.seed, 'sample', out).sampleIndices(n, take)) bytes[i] = k + 1;
      selections.set(src, bytes);
      selected[out] = take;
    });
    return { outputs, selections, selected };
  }

  // Resplit: pool the chosen source splits, sample from the pool, then cut a seeded permutation by fraction.
  if (task.n_samples !== undefined && typeof task.n_samples !== 'number')
    throw new TlabError(
      `${field(ctx, 'n_samples')}: with resplit, give one total number of rows, not one per split`,
    );
  const outputs = Object.keys(fractions);
  const pool = pairs.map(([, src]) => src);
  const total = pool.reduce((n, s) => n + (rows.get(s) ?? 0), 0);
  const take = sampleSize(task, total, undefined);
  const order = Rng.at(task.seed, 'resplit').sampleIndices(total, take);
  const counts = outputs.map((o) => Math.round(fractions[o] * take));
  counts[counts.length - 1] = take - counts.slice(0, -1).reduce((a, b) => a + b, 0);
  const offsets: [string, number][] = [];
  let offset = 0;
  for (const src of pool) {
    offsets.push([src, offset]);
    selections.set(src, new Uint8Array(rows.get(src) ?? 0));
    offset += rows.get(src) ?? 0;
  }
  let position = 0;
  outputs.forEach((out, k) => {
    selected[out] = counts[k];
    for (let j = 0; j < counts[k]; j++, position++) {
      const global = order[position];
      let s = offsets.length - 1;
      while (offsets[s][1] > global) s--;
      (selections.get(offsets[s][0]) as Uint8Array)[global - offsets[s][1]] = k + 1;
    }
  });
  return { outputs, selections, selected };
}
