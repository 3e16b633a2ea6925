/**
 * Scenes of coloured shapes and three generators over them, which share the pictures and differ in what
 * is asked, so transfer between them is measurable:
 *   counting        "How many red objects are there?", "What colour is the star?", "What shape is the blue object?"
 *   spatial         "Where is the red circle relative to the blue square?" (left/right/above/below) or yes/no
 * (and image-pairs.ts, which compares two of these scenes). counting and spatial also come as text
 * (`modality: text`): the same scene for the same seed, listed in words with positions, so the same question
 * has the same answer without the picture and image-to-text transfer is measurable too.
 */
import { z } from 'zod';
import { Rng } from '../../util/random.ts';
import type { SourceRow, TaskDefaults } from '../sources/types.ts';
import {
  COLOR_NAMES,
  COLORS,
  placeObjects,
  plural,
  renderImage,
  SHAPES,
  type ShapeName,
  shapeSvg,
  svgDocument,
} from './draw.ts';
import type { SyntheticGenerator } from './types.ts';

export interface SceneObject {
  shape: ShapeName;
  color: string;
  x: number;
  y: number;
  radius: number;
}

const splitsParam = z.record(z.string(), z.int().min(0)).default({ train: 200, validation: 20, test: 20 });
export const sceneParams = {
  splits: splitsParam,
  image_size: z.int().min(32).max(1024).default(160),
  colors: z
    .array(z.enum(COLOR_NAMES as [string, ...string[]]))
    .min(2)
    .default(['red', 'green', 'blue', 'yellow']),
  shapes: z.array(z.enum(SHAPES)).min(2).default(['circle', 'square', 'triangle', 'star']),
  min_objects: z.int().min(1).default(1),
  max_objects: z.int().min(1).max(16).default(6),
};
const modalityParam = z
  .enum(['text', 'image'])
  .default('image')
  .describe('image: the scene as a picture; text: the same scene listed in words with positions');
type Rendering = { modality: 'text' | 'image'; image_size: number };

function scene(rng: Rng, n: number, size: number, colors: string[], shapes: ShapeName[]): SceneObject[] {
  const lattice = Math.max(3, Math.ceil(Math.sqrt(n * 1.6)));
  return placeObjects(n, size, lattice, rng).map((pos) => ({
    shape: rng.pick(shapes),
    color: rng.pick(colors),
    x: pos.x,
    y: pos.y,
    radius: pos.radius,
  }));
}

type SceneParams = {
  image_size: number;
  colors: string[];
  shapes: string[];
  min_objects: number;
  max_objects: number;
};

/** A scene with min_objects..max_objects objects, as the generator's parameters ask. */
export function drawScene(p: SceneParams, rng: Rng): SceneObject[] {
  const n = rng.range(p.min_objects, Math.max(p.min_objects, p.max_objects));
  return scene(rng, n, p.image_size, p.colors, p.shapes as ShapeName[]);
}

/** Column roles shared by the one-image question generators; as text, the scene listing precedes the question. */
function questionDefaults(p: Rendering, userPrompt: string, metadata: string[]): TaskDefaults {
  return {
    ...(p.modality === 'image' ? { image_column: 'image' } : {}),
    user_prompt: p.modality === 'image' ? userPrompt : `{scene}\n${userPrompt}`,
    assistant_text_column: 'answer',
    label_column: 'answer',
    grader: 'ExactMatchGrader',
    metadata_columns: metadata,
  };
}

export function sceneSvg(objects: SceneObject[], size: number): string {
  return svgDocument(
    size,
    size,
    objects.map((o) => shapeSvg(o.shape, o.x, o.y, o.radius, COLORS[o.color])).join(''),
    '#f4f4f4',
  );
}

const describe = (o: SceneObject): string => `${o.color} ${o.shape}`;

/**
 * The scene in words: every object with its centre in the picture's pixel coordinates (y grows downwards, as
 * in the image), so counts, attributes and left/right/above/below are all readable from the text.
 */
export function sceneText(objects: SceneObject[], size: number): string {
  const lines = objects.map((o) => `- a ${describe(o)} at x=${Math.round(o.x)}, y=${Math.round(o.y)}`);
  const n = `${objects.length} object${objects.length === 1 ? '' : 's'}`;
  return `A ${size} x ${size} scene (x from the left edge, y from the top edge) with ${n}:\n${lines.join('\n')}`;
}

/** The row's picture, or its text listing: the scene drawn from the RNG either way, so answers match. */
async function sceneColumns(p: Rendering, objects: SceneObject[], file: string): Promise<SourceRow> {
  if (p.modality === 'text') return { scene: sceneText(objects, p.image_size) };
  return { image: await renderImage(sceneSvg(objects, p.image_size), file) };
}

// ---------------------------------------------------------------------------------------------- counting

const CountingParams = z
  .object({
    ...sceneParams,
    modality: modalityParam,
    questions: z
      .array(z.enum(['count', 'count_color', 'count_shape', 'color', 'shape']))
      .min(1)
      .default(['count', 'count_color', 'count_shape', 'color', 'shape']),
  })
  .strict();
type CountingParams = z.infer<typeof CountingParams>;

function countingQuestion(
  p: CountingParams,
  rng: Rng,
  objects: SceneObject[],
): { question: string; answer: string; kind: string } | undefined {
  const kind = rng.pick(p.questions);
  if (kind === 'count')
    return { kind, question: 'How many objects are there?', answer: String(objects.length) };
  if (kind === 'count_color') {
    const color = rng.pick(p.colors);
    return {
      kind,
      question: `How many ${color} objects are there?`,
      answer: String(objects.filter((o) => o.color === color).length),
    };
  }
  if (kind === 'count_shape') {
    const shape = rng.pick(p.shapes);
    return {
      kind,
      question: `How many ${plural(shape)} are there?`,
      answer: String(objects.filter((o) => o.shape === shape).length),
    };
  }
  // Attribute questions only about an object that is unique by the attribute asked from.
  const byShape = objects.filter((o) => objects.filter((x) => x.shape === o.shape).length === 1);
  const byColor = objects.filter((o) => objects.filter((x) => x.color === o.color).length === 1);
  if (kind === 'color' && byShape.length > 0) {
    const o = rng.pick(byShape);
    return { kind, question: `What colour is the ${o.shape}?`, answer: o.color };
  }
  if (kind === 'shape' && byColor.length > 0) {
    const o = rng.pick(byColor);
    return { kind, question: `What shape is the ${o.color} object?`, answer: o.shape };
  }
  return undefined;
}

export const counting: SyntheticGenerator<CountingParams> = {
  name: 'counting',
  version: 1,
  description: 'one scene of shapes; count objects, or name the colour/shape of a unique object',
  params: CountingParams,
  columns: (p) => [p.modality === 'image' ? 'image' : 'scene', 'question', 'answer', 'kind', 'objects'],
  defaults: (p) => questionDefaults(p, '{question} Answer with one word or number.', ['kind', 'objects']),
  labels: (p) =>
    [
      ...new Set([
        ...Array.from({ length: p.max_objects + 1 }, (_, i) => String(i)),
        ...p.colors,
        ...p.shapes,
      ]),
    ].sort(),
  numRows: (p, split) => p.splits[split] ?? 0,
  async row(p, seed, split, index): Promise<SourceRow> {
    const rng = Rng.at(seed, 'counting', split, index);
    for (;;) {
      const objects = drawScene(p, rng);
      const q = countingQuestion(p, rng, objects);
      if (!q) continue; // no object unique by that attribute: draw another scene
      return {
        ...(await sceneColumns(p, objects, `counting-${split}-${index}.png`)),
        question: q.question,
        answer: q.answer,
        kind: q.kind,
        objects: objects.map(describe).join(', '),
      };
    }
  },
};

// ----------------------------------------------------------------------------------------------- spatial

const SpatialParams = z
  .object({
    ...sceneParams,
    min_objects: z.int().min(2).default(2),
    max_objects: z.int().min(2).max(9).default(4),
    modality: modalityParam,
    format: z.enum(['relation', 'yes_no']).default('relation'),
  })
  .strict();
type SpatialParams = z.infer<typeof SpatialParams>;
const RELATIONS = ['left', 'right', 'above', 'below'];

function relation(a: SceneObject, b: SceneObject): string | undefined {
  const dx = a.x - b.x;
  const dy = a.y - b.y;
  // Only clear cases: the dominant axis must win by a margin.
  if (Math.abs(dx) > 1.5 * Math.abs(dy) && Math.abs(dx) > a.radius) return dx < 0 ? 'left' : 'right';
  if (Math.abs(dy) > 1.5 * Math.abs(dx) && Math.abs(dy) > a.radius) return dy < 0 ? 'above' : 'below';
  return undefined;
}

export const spatial: SyntheticGenerator<SpatialParams> = {
  name: 'spatial',
  version: 1,
  description: 'where is one object relative to another (left/right/above/below, or a yes/no question)',
  params: SpatialParams,
  columns: (p) => [p.modality === 'image' ? 'image' : 'scene', 'question', 'answer', 'relation', 'objects'],
  defaults: (p) => questionDefaults(p, '{question}', ['relation', 'objects']),
  labels: (p) => (p.format === 'relation' ? [...RELATIONS].sort() : ['no', 'yes']),
  numRows: (p, split) => p.splits[split] ?? 0,
  async row(p, seed, split, index): Promise<SourceRow> {
    const rng = Rng.at(seed, 'spatial', split, index);
    for (;;) {
      const objects = drawScene(p, rng);
      const unique = objects.filter((o) => objects.filter((x) => describe(x) === describe(o)).length === 1);
      if (unique.length < 2) continue;
      const [ia, ib] = rng.sampleIndices(unique.length, 2);
      const a = unique[ia];
      const b = unique[ib];
      const rel = relation(a, b);
      if (!rel) continue;
      let question: string;
      let answer: string;
      if (p.format === 'relation') {
        question = `Where is the ${describe(a)} relative to the ${describe(b)}? Answer with left, right, above or below.`;
        answer = rel;
      } else {
        const asked = rng.chance(0.5) ? rel : rng.pick(RELATIONS.filter((r) => r !== rel));
        const phrase = asked === 'left' || asked === 'right' ? `to the ${asked} of` : asked;
        question = `Is the ${describe(a)} ${phrase} the ${describe(b)}? Answer yes or no.`;
        answer = asked === rel ? 'yes' : 'no';
      }
      return {
        ...(await sceneColumns(p, objects, `spatial-${split}-${index}.png`)),
        question,
        answer,
        relation: rel,
        objects: objects.map(describe).join(', '),
      };
    }
  },
};
