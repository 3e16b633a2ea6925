/**
 * A contact sheet of task examples: each cell shows the example's images (or its prompt text when it has
 * none) with a caption: uid, question and reference answer. Rendered as one PNG with sharp (thumbnails) and
 * librsvg (frames and text in DejaVu), so the same examples give the same bytes.
 */
import sharp, { type OverlayOptions } from 'sharp';
import { escapeXml } from '../data/synthetic/draw.ts';
import { messageImages, messageText, type TaskExample } from '../data/task-format.ts';

export interface GalleryOptions {
  /** Cells per row (default: up to 4). */
  columns?: number;
  /** Height of the image area of a cell, and the width per image (default 200). */
  thumb?: number;
  title?: string;
  /** Absolute path of an image named in an example. */
  imagePath(relative: string): string;
  /** A line per uid drawn under the answer in red, e.g. a model's wrong prediction and its score. */
  notes?: ReadonlyMap<string, string>;
}

const FONT = 'DejaVu Sans';
const MONO = 'DejaVu Sans Mono';
const CAPTION_SIZE = 12;
const LINE = 16;
const PAD = 10;

/** Greedy word wrap at `width` characters, at most `max` lines (the last one ends in an ellipsis if cut). */
export function wrapText(text: string, width: number, max: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      const piece = word.length > width ? `${word.slice(0, width - 1)}…` : word;
      if (!line) line = piece;
      else if (line.length + 1 + piece.length <= width) line += ` ${piece}`;
      else {
        lines.push(line);
        line = piece;
      }
    }
    lines.push(line);
  }
  if (lines.length > max) return [...lines.slice(0, max - 1), `${lines[max - 1].slice(0, width - 1)}…`];
  return lines;
}

/** The last `max` wrapped lines: the question usually ends the prompt, after any preamble. */
function tailLines(text: string, width: number, max: number): string[] {
  if (max === 0) return [];
  const lines = wrapText(text, width, Number.POSITIVE_INFINITY);
  return lines.length <= max
    ? lines
    : [`…${lines[lines.length - max].slice(1)}`, ...lines.slice(lines.length - max + 1)];
}

function lastUser(example: TaskExample): TaskExample['messages'][number] | undefined {
  return [...example.messages].reverse().find((m) => m.role === 'user');
}

function userImages(example: TaskExample): string[] {
  const user = lastUser(example);
  return user ? messageImages([user]) : [];
}

export async function renderGallery(examples: TaskExample[], options: GalleryOptions): Promise<Uint8Array> {
  const thumb = options.thumb ?? 200;
  const columns = Math.max(1, Math.min(options.columns ?? 4, examples.length || 1));
  const perCell = Math.max(1, ...examples.map((e) => userImages(e).length));
  // Text-only examples (e.g. text grids) get a cell wide enough for their longest prompt line, up to 2 thumbs.
  const longest = Math.max(
    0,
    ...examples
      .filter((e) => userImages(e).length === 0)
      .flatMap((e) =>
        messageText(lastUser(e) ?? { role: 'user', content: [] })
          .split('\n')
          .map((l) => l.length),
      ),
  );
  const cellW = Math.max(
    thumb * Math.min(perCell, 3),
    Math.min(thumb * 2, Math.ceil(longest * 11 * 0.61) + 14),
  );
  const chars = Math.floor((cellW - 8) / (CAPTION_SIZE * 0.6));
  const captionLines = 6;
  const cellH = thumb + 8 + captionLines * LINE;
  const titleH = options.title ? 34 : 0;
  const rows = Math.ceil(examples.length / columns);
  const width = PAD + columns * (cellW + PAD);
  const height = titleH + PAD + rows * (cellH + PAD);

  let svg = '';
  if (options.title)
    svg += `<text x="${PAD}" y="24" font-family="${FONT}" font-size="18" font-weight="bold" fill="#111">${escapeXml(options.title)}</text>`;
  const overlays: OverlayOptions[] = [];
  for (let i = 0; i < examples.length; i++) {
    const ex = examples[i];
    const x = PAD + (i % columns) * (cellW + PAD);
    const y = titleH + PAD + Math.floor(i / columns) * (cellH + PAD);
    const user = lastUser(ex);
    const images = userImages(ex);
    svg += `<rect x="${x - 1}" y="${y - 1}" width="${cellW + 2}" height="${cellH + 2}" fill="#ffffff" stroke="#bbb"/>`;
    if (images.length > 0) {
      // Several images (e.g. an NLVR2-style pair) side by side in placeholder order, each labelled, so a
      // statement about "the left image" reads against the left tile.
      const slot = Math.floor(cellW / images.length);
      const names = images.length === 2 ? ['left', 'right'] : images.map((_, k) => `image ${k + 1}`);
      const label = images.length > 1 ? 14 : 0; // a strip under the tiles for their names
      for (let k = 0; k < images.length; k++) {
        const tile = await sharp(options.imagePath(images[k]))
          .resize(slot - 4, thumb - 4 - label, { fit: 'contain', background: '#ffffff' })
          .png()
          .toBuffer();
        overlays.push({ input: tile, left: x + k * slot + 2, top: y + 2 });
        if (label) {
          if (k > 0)
            svg += `<line x1="${x + k * slot}" y1="${y}" x2="${x + k * slot}" y2="${y + thumb}" stroke="#999"/>`;
          svg += `<text x="${x + k * slot + slot / 2}" y="${y + thumb - 3}" text-anchor="middle" font-family="${FONT}" font-size="10" fill="#555">${names[k]}</text>`;
        }
      }
    } else {
      // Text-only example: its prompt (e.g. a text grid) in monospace.
      svg += `<rect x="${x}" y="${y}" width="${cellW}" height="${thumb}" fill="#f6f6f6"/>`;
      const monoChars = Math.floor((cellW - 12) / (11 * 0.61));
      wrapText(user ? messageText(user) : '', monoChars, Math.floor((thumb - 8) / 14)).forEach((line, j) => {
        svg += `<text x="${x + 6}" y="${y + 16 + j * 14}" font-family="${MONO}" font-size="11" fill="#222" xml:space="preserve">${escapeXml(line)}</text>`;
      });
    }
    const question = images.length > 0 && user ? messageText(user) : '';
    const caption: { text: string; bold?: boolean; color?: string }[] = [
      { text: `${ex.uid}  [${ex.split}]`, bold: true },
      ...tailLines(question, chars, images.length > 0 ? 3 : 0).map((text) => ({ text })),
      ...wrapText(`answer: ${ex.answer ?? '(none)'}`, chars, images.length > 0 ? 2 : 5).map((text) => ({
        text,
        color: '#0a5',
      })),
    ];
    const note = options.notes?.get(ex.uid);
    // The note replaces the last caption lines, so it is always shown.
    if (note)
      caption.splice(
        captionLines - 2,
        caption.length,
        ...wrapText(note, chars, 2).map((text) => ({ text, color: '#c22' })),
      );
    caption.slice(0, captionLines).forEach((line, j) => {
      svg += `<text x="${x + 4}" y="${y + thumb + 4 + (j + 1) * LINE - 4}" font-family="${FONT}" font-size="${CAPTION_SIZE}" font-weight="${line.bold ? 'bold' : 'normal'}" fill="${line.color ?? '#222'}">${escapeXml(line.text)}</text>`;
    });
  }
  const doc = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="${width}" height="${height}" fill="#eeeeee"/>${svg}</svg>`;
  const out = await sharp(Buffer.from(doc)).composite(overlays).png().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
