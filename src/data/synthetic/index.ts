/** The synthetic generators by name (`dataset: synthetic:<name>` in a task). */
import { gridWorld } from './grid-world.ts';
import { imagePairs } from './image-pairs.ts';
import { jsonExtraction } from './json-extraction.ts';
import { counting, spatial } from './scenes.ts';
import type { AnyGenerator } from './types.ts';

export const GENERATORS: Record<string, AnyGenerator> = {
  [gridWorld.name]: gridWorld,
  [imagePairs.name]: imagePairs,
  [counting.name]: counting,
  [spatial.name]: spatial,
  [jsonExtraction.name]: jsonExtraction,
};

export type { AnyGenerator, SyntheticGenerator } from './types.ts';
