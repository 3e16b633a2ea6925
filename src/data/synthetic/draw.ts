/**
 * SVG drawing for synthetic images: named shapes and colours shared by every generator (so tasks differ in
 * the question, not in what the pictures look like), text in DejaVu, and rasterisation to PNG with sharp
 * (librsvg), which gives byte-identical files for the same SVG on the same library versions.
 */
import { svgToPng } from '../images/codec.ts';

export const COLORS: Record<string, string> = {
  red: '#d62728',
  green: '#2ca02c',
  blue: '#1f77b4',
  yellow: '#e8c31a',
  purple: '#9467bd',
  orange: '#ff7f0e',
  brown: '#8c564b',
  gray: '#7f7f7f',
};
export const COLOR_NAMES = Object.keys(COLORS);

export const SHAPES = [
  'circle',
  'square',
  'triangle',
  'star',
  'cross',
  'diamond',
  'hexagon',
  'heart',
] as const;
export type ShapeName = (typeof SHAPES)[number];

export function isShape(name: string): name is ShapeName {
  return (SHAPES as readonly string[]).includes(name);
}

/** Plural of a shape noun for questions ("crosses", not "crosss"). */
export function plural(noun: string): string {
  return /(s|x|ch|sh)$/.test(noun) ? `${noun}es` : `${noun}s`;
}

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}

const r2 = (v: number): string => (Math.round(v * 100) / 100).toString();

function polygon(
  cx: number,
  cy: number,
  radius: number,
  points: number,
  rotation: number,
  inner?: number,
): string {
  const pts: string[] = [];
  const n = inner === undefined ? points : points * 2;
  for (let i = 0; i < n; i++) {
    const rad = inner !== undefined && i % 2 === 1 ? radius * inner : radius;
    const a = rotation + (i * 2 * Math.PI) / n;
    pts.push(`${r2(cx + rad * Math.cos(a))},${r2(cy + rad * Math.sin(a))}`);
  }
  return pts.join(' ');
}

/** One filled shape centred at (cx, cy) fitting in a circle of `radius`. */
export function shapeSvg(shape: ShapeName, cx: number, cy: number, radius: number, fill: string): string {
  const f = `fill="${fill}" stroke="#222" stroke-width="${r2(Math.max(1, radius / 14))}"`;
  const up = -Math.PI / 2;
  switch (shape) {
    case 'circle':
      return `<circle cx="${r2(cx)}" cy="${r2(cy)}" r="${r2(radius * 0.9)}" ${f}/>`;
    case 'square': {
      const s = radius * 1.5;
      return `<rect x="${r2(cx - s / 2)}" y="${r2(cy - s / 2)}" width="${r2(s)}" height="${r2(s)}" ${f}/>`;
    }
    case 'triangle':
      return `<polygon points="${polygon(cx, cy + radius * 0.15, radius, 3, up)}" ${f}/>`;
    case 'star':
      return `<polygon points="${polygon(cx, cy + radius * 0.05, radius, 5, up, 0.45)}" ${f}/>`;
    case 'diamond':
      return `<polygon points="${polygon(cx, cy, radius, 4, up)}" ${f}/>`;
    case 'hexagon':
      return `<polygon points="${polygon(cx, cy, radius * 0.95, 6, 0)}" ${f}/>`;
    case 'cross': {
      const a = radius * 0.9;
      const b = radius * 0.32;
      const p = [
        [-b, -a],
        [b, -a],
        [b, -b],
        [a, -b],
        [a, b],
        [b, b],
        [b, a],
        [-b, a],
        [-b, b],
        [-a, b],
        [-a, -b],
        [-b, -b],
      ];
      return `<polygon points="${p.map(([x, y]) => `${r2(cx + x)},${r2(cy + y)}`).join(' ')}" ${f}/>`;
    }
    case 'heart': {
      const s = radius / 10;
      const d = `M ${r2(cx)} ${r2(cy + 8 * s)} C ${r2(cx - 11 * s)} ${r2(cy)} ${r2(cx - 9 * s)} ${r2(cy - 10 * s)} ${r2(cx)} ${r2(cy - 4 * s)} C ${r2(cx + 9 * s)} ${r2(cy - 10 * s)} ${r2(cx + 11 * s)} ${r2(cy)} ${r2(cx)} ${r2(cy + 8 * s)} Z`;
      return `<path d="${d}" ${f}/>`;
    }
  }
}

export interface TextOptions {
  size: number;
  anchor?: 'start' | 'middle' | 'end';
  weight?: 'normal' | 'bold';
  family?: 'sans' | 'mono';
  fill?: string;
}

export function textSvg(x: number, y: number, text: string, o: TextOptions): string {
  const family = o.family === 'mono' ? 'DejaVu Sans Mono' : 'DejaVu Sans';
  return `<text x="${r2(x)}" y="${r2(y)}" font-family="${family}" font-size="${o.size}" font-weight="${o.weight ?? 'normal'}" text-anchor="${o.anchor ?? 'start'}" fill="${o.fill ?? '#111'}">${escapeXml(text)}</text>`;
}

export function svgDocument(width: number, height: number, body: string, background = '#ffffff'): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><rect width="${width}" height="${height}" fill="${background}"/>${body}</svg>`;
}

/** Renders an SVG document to an image struct as Hugging Face datasets store them. */
export async function renderImage(svg: string, name: string): Promise<{ bytes: Uint8Array; path: string }> {
  return { bytes: await svgToPng(svg), path: name };
}

export interface PlacedObject {
  shape: ShapeName;
  color: string;
  x: number;
  y: number;
  radius: number;
}

/**
 * Positions for n non-overlapping objects: distinct cells of a lattice, jittered inside each cell, so objects
 * never touch and spatial relations stay unambiguous at the cell level.
 */
export function placeObjects(
  n: number,
  size: number,
  lattice: number,
  rand: { int(n: number): number; next(): number; sampleIndices(n: number, k: number): number[] },
): { x: number; y: number; radius: number; cellRow: number; cellCol: number }[] {
  const cell = size / lattice;
  const radius = cell * 0.32;
  return rand.sampleIndices(lattice * lattice, n).map((c) => {
    const cellRow = Math.floor(c / lattice);
    const cellCol = c % lattice;
    const slack = cell / 2 - radius - 2;
    return {
      x: (cellCol + 0.5) * cell + (rand.next() * 2 - 1) * slack * 0.6,
      y: (cellRow + 0.5) * cell + (rand.next() * 2 - 1) * slack * 0.6,
      radius,
      cellRow,
      cellCol,
    };
  });
}
