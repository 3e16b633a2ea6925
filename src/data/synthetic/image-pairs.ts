/**
 * image-pairs: NLVR2-style examples, two rendered scenes (left, right) and a statement about them to judge True or
 * False, with balanced labels (a statement is redrawn until its truth is the label drawn first). Templates:
 *   exact_count   "The left image contains exactly two red circles."             (one side, colour and shape)
 *   none          "The right image contains no blue objects."                     (one side, colour)
 *   total         "There are 5 objects in total in the two images."               (both, counts)
 *   more          "There are more stars in the left image than in the right image."   (compare shape counts)
 *   more_color    "There are more red objects in the left image than in the right image." (compare colour counts)
 *   same_count    "The two images contain the same number of objects."            (compare counts)
 *   both          "Both images contain a green square."                            (both, colour and shape)
 *   both_color    "Both images contain a yellow object."                           (both, colour)
 *   only          "Only the left image contains a triangle."                       (one side and not the other)
 *   same_color    "All objects in the two images have the same colour."          (compare colours; text fixed)
 * Most need both images; `templates` picks a subset (e.g. both_color with one object per scene is learnable by a
 * tiny model in seconds, while its text alone tells nothing about the answer).
 */
import { z } from 'zod';
import { TlabError } from '../../util/errors.ts';
import { Rng } from '../../util/random.ts';
import type { SourceRow } from '../sources/types.ts';
import { placeObjects, plural, renderImage, type ShapeName } from './draw.ts';
import { type SceneObject, sceneParams, sceneSvg } from './scenes.ts';
import type { SyntheticGenerator } from './types.ts';

export const PAIR_TEMPLATES = [
  'exact_count',
  'none',
  'total',
  'more',
  'more_color',
  'same_count',
  'both',
  'both_color',
  'only',
  'same_color',
] as const;
export type PairTemplate = (typeof PAIR_TEMPLATES)[number];

const PairsParams = z
  .object({
    ...sceneParams,
    max_objects: z.int().min(1).max(9).default(5),
    templates: z
      .array(z.enum(PAIR_TEMPLATES))
      .min(1)
      .default([...PAIR_TEMPLATES]),
    /**
     * Cells per side of the grid objects are placed in (an object fills about 2/3 of its cell); default the
     * smallest that fits them, at least 3. `lattice: 1` with one object per scene gives large, easy objects.
     */
    lattice: z.int().min(1).max(8).optional(),
    /** Colours and shapes statements may ask about (default: those of the scenes). */
    query_colors: z.array(z.string()).min(1).optional(),
    query_shapes: z.array(z.string()).min(1).optional(),
  })
  .strict();
type PairsParams = z.infer<typeof PairsParams>;

interface Statement {
  sentence: string;
  truth: boolean;
  template: PairTemplate;
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three'];
const describe = (o: SceneObject): string => `${o.color} ${o.shape}`;

/** A scene as scenes.ts draws one (the same draws in the same order), on a `lattice` grid when one is set. */
function drawPairScene(p: PairsParams, rng: Rng): SceneObject[] {
  const n = rng.range(p.min_objects, Math.max(p.min_objects, p.max_objects));
  const lattice = p.lattice ?? Math.max(3, Math.ceil(Math.sqrt(n * 1.6)));
  if (n > lattice * lattice)
    throw new TlabError(
      `image-pairs: ${n} objects do not fit a ${lattice}x${lattice} lattice; raise lattice`,
    );
  return placeObjects(n, p.image_size, lattice, rng).map((pos) => ({
    shape: rng.pick(p.shapes as ShapeName[]),
    color: rng.pick(p.colors),
    x: pos.x,
    y: pos.y,
    radius: pos.radius,
  }));
}

function statement(p: PairsParams, rng: Rng, left: SceneObject[], right: SceneObject[]): Statement {
  const count = (objs: SceneObject[], f: (o: SceneObject) => boolean): number => objs.filter(f).length;
  const color = rng.pick(p.query_colors ?? p.colors);
  const shape = rng.pick(p.query_shapes ?? p.shapes);
  const side = rng.chance(0.5) ? 'left' : 'right';
  const objs = side === 'left' ? left : right;
  const other = side === 'left' ? right : left;
  const isColor = (o: SceneObject) => o.color === color;
  const isShape = (o: SceneObject) => o.shape === shape;
  const template = rng.pick(p.templates);
  switch (template) {
    case 'exact_count': {
      const n = rng.range(1, 3);
      return {
        template,
        sentence: `The ${side} image contains exactly ${NUMBER_WORDS[n]} ${color} ${n === 1 ? shape : plural(shape)}.`,
        truth: count(objs, (o) => isColor(o) && isShape(o)) === n,
      };
    }
    case 'none':
      return {
        template,
        sentence: `The ${side} image contains no ${color} objects.`,
        truth: count(objs, isColor) === 0,
      };
    case 'total': {
      const n = left.length + right.length + rng.range(-1, 1);
      return {
        template,
        sentence: `There are ${n} objects in total in the two images.`,
        truth: n === left.length + right.length,
      };
    }
    case 'more':
      return {
        template,
        sentence: `There are more ${plural(shape)} in the left image than in the right image.`,
        truth: count(left, isShape) > count(right, isShape),
      };
    case 'more_color':
      return {
        template,
        sentence: `There are more ${color} objects in the left image than in the right image.`,
        truth: count(left, isColor) > count(right, isColor),
      };
    case 'same_count':
      return {
        template,
        sentence: 'The two images contain the same number of objects.',
        truth: left.length === right.length,
      };
    case 'both':
      return {
        template,
        sentence: `Both images contain a ${color} ${shape}.`,
        truth: left.some((o) => isColor(o) && isShape(o)) && right.some((o) => isColor(o) && isShape(o)),
      };
    case 'both_color':
      return {
        template,
        sentence: `Both images contain a ${color} object.`,
        truth: left.some(isColor) && right.some(isColor),
      };
    case 'same_color':
      return {
        template,
        sentence: 'All objects in the two images have the same colour.',
        truth: new Set([...left, ...right].map((o) => o.color)).size === 1,
      };
    case 'only':
      return {
        template,
        sentence: `Only the ${side} image contains a ${shape}.`,
        truth: objs.some(isShape) && !other.some(isShape),
      };
  }
}

export const imagePairs: SyntheticGenerator<PairsParams> = {
  name: 'image-pairs',
  version: 2,
  description:
    'two scenes and a statement comparing them (counts, colours, shapes, left/right) to judge True or False (NLVR2-style, balanced)',
  params: PairsParams,
  columns: () => ['left', 'right', 'sentence', 'label', 'template', 'left_objects', 'right_objects'],
  defaults: () => ({
    image_column: ['left', 'right'],
    user_prompt:
      'You are given two images. Decide whether the statement is true.\nStatement: {sentence}\nAnswer with either True or False.',
    assistant_text_column: 'label',
    label_column: 'label',
    grader: 'ExactMatchGrader',
    metadata_columns: ['template', 'left_objects', 'right_objects'],
  }),
  labels: () => ['False', 'True'],
  numRows: (p, split) => p.splits[split] ?? 0,
  async row(p, seed, split, index): Promise<SourceRow> {
    const rng = Rng.at(seed, 'image-pairs', split, index);
    const target = rng.chance(0.5);
    for (;;) {
      const left = drawPairScene(p, rng);
      const right = drawPairScene(p, rng);
      // Redraw statements (then scenes) until one has the target truth value, so labels are balanced.
      for (let attempt = 0; attempt < 20; attempt++) {
        const s = statement(p, rng, left, right);
        if (s.truth !== target) continue;
        const [l, r] = await Promise.all([
          renderImage(sceneSvg(left, p.image_size), `pair-${split}-${index}-left.png`),
          renderImage(sceneSvg(right, p.image_size), `pair-${split}-${index}-right.png`),
        ]);
        return {
          left: l,
          right: r,
          sentence: s.sentence,
          label: target ? 'True' : 'False',
          template: s.template,
          left_objects: left.map(describe).join(', '),
          right_objects: right.map(describe).join(', '),
        };
      }
    }
  },
};
