import type { z } from 'zod';
import type { SourceRow, TaskDefaults } from '../sources/types.ts';

/**
 * A synthetic task generator. Row `i` of split `s` depends only on (seed, s, i) and the parameters, so any
 * subset can be generated without the rest (sampling and streaming cost nothing extra) and a build is
 * reproducible. Bump `version` whenever the output for the same parameters changes; the manifest records it.
 */
export interface SyntheticGenerator<P extends { splits: Record<string, number> }> {
  readonly name: string;
  readonly version: number;
  readonly description: string;
  readonly params: z.ZodType<P, unknown>;
  columns(params: P): string[];
  defaults(params: P): TaskDefaults;
  /** Class names when answers come from a closed set (transferability metrics need them). */
  labels(params: P): string[] | undefined;
  /** Rows per split (splits counts items; a generator may turn one item into several rows). */
  numRows(params: P, split: string): number;
  row(params: P, seed: number, split: string, index: number): Promise<SourceRow>;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds generators of differing parameter types
export type AnyGenerator = SyntheticGenerator<any>;
