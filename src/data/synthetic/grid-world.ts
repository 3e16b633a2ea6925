/**
 * Grid world: an R x C grid of objects from a vocabulary and questions "What object is in row r, column c?"
 * (0-based, as in the grid data the lab's earlier GPT-2 studies pre-trained on). The grid is given as text
 * (`| bird | frog |` rows), as an image, or both; single-instruction rows ask one question each (one image
 * serves several rows and is stored once), multi-instruction rows ask all of an image's questions at once.
 */
import { z } from 'zod';
import { Rng } from '../../util/random.ts';
import type { SourceRow } from '../sources/types.ts';
import { COLOR_NAMES, COLORS, isShape, renderImage, SHAPES, shapeSvg, svgDocument, textSvg } from './draw.ts';
import type { SyntheticGenerator } from './types.ts';

/** Default vocabulary: the shape names, each drawn as that shape in its own colour. */
export const GRID_VOCAB: string[] = [...SHAPES];

const Params = z
  .object({
    splits: z
      .record(z.string(), z.int().min(0))
      .default({ train: 200, validation: 20, test: 20 })
      .describe(
        'grids per split, not questions (with questions_per_image > 1 and single instructions, each grid gives that many rows)',
      ),
    rows: z.int().min(1).max(12).default(3),
    cols: z.int().min(1).max(12).default(3),
    vocab: z.array(z.string().min(1)).min(2).default(GRID_VOCAB),
    /** Objects drawn from the vocabulary for each grid (the prompt lists them). */
    vocab_subset_size: z.int().min(1).default(4),
    modality: z.enum(['text', 'image', 'both']).default('image'),
    questions_per_image: z
      .int()
      .min(1)
      .default(3)
      .describe('questions per grid; above 1 (multi-question mode) splits still counts grids, not questions'),
    instructions: z.enum(['single', 'multi']).default('single'),
    /** How objects look: the shape icon, the word written in the cell, or both. */
    render: z.enum(['icon', 'text', 'icon+text']).default('icon'),
    cell_size: z.int().min(16).max(256).default(56),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.vocab_subset_size > p.vocab.length)
      ctx.addIssue({
        code: 'custom',
        path: ['vocab_subset_size'],
        message: `must be <= vocab size ${p.vocab.length}`,
      });
    if (p.questions_per_image > p.rows * p.cols)
      ctx.addIssue({
        code: 'custom',
        path: ['questions_per_image'],
        message: `must be <= rows*cols = ${p.rows * p.cols}`,
      });
    if (new Set(p.vocab).size !== p.vocab.length)
      ctx.addIssue({ code: 'custom', path: ['vocab'], message: 'has repeated words' });
  });
type GridParams = z.infer<typeof Params>;

interface Grid {
  cells: string[][];
  subset: string[];
  questions: [number, number][];
}

function makeGrid(p: GridParams, seed: number, split: string, item: number): Grid {
  const rng = Rng.at(seed, 'grid-world', split, item);
  const subset = rng.sampleIndices(p.vocab.length, p.vocab_subset_size).map((i) => p.vocab[i]);
  const cells = Array.from({ length: p.rows }, () => Array.from({ length: p.cols }, () => rng.pick(subset)));
  const questions = rng
    .sampleIndices(p.rows * p.cols, p.questions_per_image)
    .map((c) => [Math.floor(c / p.cols), c % p.cols] as [number, number]);
  return { cells, subset, questions };
}

export function gridText(cells: string[][]): string {
  return cells.map((row) => `| ${row.join(' | ')} |`).join('\n');
}

function iconColor(word: string, vocab: string[]): string {
  return COLORS[COLOR_NAMES[vocab.indexOf(word) % COLOR_NAMES.length]];
}

function gridSvg(p: GridParams, cells: string[][]): string {
  const s = p.cell_size;
  const pad = 4;
  const w = p.cols * s + pad * 2;
  const h = p.rows * s + pad * 2;
  let body = '';
  for (let r = 0; r < p.rows; r++)
    for (let c = 0; c < p.cols; c++) {
      const x = pad + c * s;
      const y = pad + r * s;
      const word = cells[r][c];
      body += `<rect x="${x}" y="${y}" width="${s}" height="${s}" fill="#fafafa" stroke="#000" stroke-width="2"/>`;
      const icon = p.render !== 'text' && isShape(word);
      if (icon) {
        const radius = p.render === 'icon+text' ? s * 0.28 : s * 0.36;
        const cy = p.render === 'icon+text' ? y + s * 0.4 : y + s / 2;
        body += shapeSvg(word, x + s / 2, cy, radius, iconColor(word, p.vocab));
      }
      if (!icon || p.render !== 'icon') {
        const size = Math.max(8, Math.min(s * 0.22, (s * 1.6) / Math.max(4, word.length)));
        body += textSvg(x + s / 2, icon ? y + s * 0.9 : y + s / 2 + size * 0.35, word, {
          size: Math.round(size),
          anchor: 'middle',
        });
      }
    }
  return svgDocument(w, h, body);
}

const recentImages = new Map<string, Promise<{ bytes: Uint8Array; path: string }>>();

const question = (r: number, c: number): string => `What object is in row ${r}, column ${c}?`;
const listing = (subset: string[]): string => `[${subset.map((o) => `'${o}'`).join(', ')}]`;

export const gridWorld: SyntheticGenerator<GridParams> = {
  name: 'grid-world',
  version: 1,
  description: 'R x C grid of objects; "what object is in row r, column c?" as text, image or both',
  params: Params,
  columns: (p) => [
    'grid_id',
    'grid_text',
    'objects',
    'prompt',
    'question',
    'answer',
    'row',
    'col',
    ...(p.modality === 'text' ? [] : ['image']),
  ],
  defaults: (p) => ({
    user_prompt: '{prompt}',
    assistant_text_column: 'answer',
    ...(p.modality === 'text' ? {} : { image_column: 'image' }),
    ...(p.instructions === 'single' ? { label_column: 'answer' } : {}),
    grader: p.instructions === 'single' ? 'ExactMatchGrader' : 'LineAccuracyGrader',
    metadata_columns: ['grid_id', 'grid_text', 'objects', 'row', 'col'],
  }),
  labels: (p) => (p.instructions === 'single' ? [...p.vocab].sort() : undefined),
  numRows: (p, split) => (p.splits[split] ?? 0) * (p.instructions === 'single' ? p.questions_per_image : 1),
  async row(p, seed, split, index): Promise<SourceRow> {
    const perImage = p.instructions === 'single' ? p.questions_per_image : 1;
    const item = Math.floor(index / perImage);
    const grid = makeGrid(p, seed, split, item);
    const asked = p.instructions === 'single' ? [grid.questions[index % perImage]] : grid.questions;
    const intro = `The grid ${p.modality === 'image' ? 'in the image' : 'above'} is size ${p.rows} by ${p.cols}. Each cell contains an object from ${listing(grid.subset)}.`;
    const text = p.modality === 'image' ? '' : `${gridText(grid.cells)}\n`;
    const answers = asked.map(([r, c]) => grid.cells[r][c]);
    const questionText =
      p.instructions === 'single'
        ? question(asked[0][0], asked[0][1])
        : `Answer each question on its own line as '<question> A: <object>'.\n${asked.map(([r, c]) => question(r, c)).join('\n')}`;
    const answer =
      p.instructions === 'single'
        ? answers[0]
        : asked.map(([r, c], k) => `${question(r, c)} A: ${answers[k]}`).join('\n');
    const row: SourceRow = {
      grid_id: `${split}-${item}`,
      grid_text: gridText(grid.cells),
      objects: grid.subset.join(','),
      prompt: `${text}${intro}\n${questionText}`,
      question: questionText,
      answer,
      row: p.instructions === 'single' ? asked[0][0] : null,
      col: p.instructions === 'single' ? asked[0][1] : null,
    };
    if (p.modality !== 'text') {
      // Consecutive single-instruction rows share their grid: render it once.
      const key = `${seed}/${split}/${item}/${JSON.stringify(p)}`;
      let image = recentImages.get(key);
      if (!image) {
        image = renderImage(gridSvg(p, grid.cells), `grid-${split}-${item}.png`);
        recentImages.set(key, image);
        if (recentImages.size > 256) recentImages.delete(recentImages.keys().next().value as string);
      }
      row.image = await image;
    }
    return row;
  },
};
