/**
 * Probing a VLM's image patches for the object at each grid position (seed 003's open question): for a grid-world
 * image with R×C cells, the patches whose centres fall inside cell (r, c) are concatenated and a linear probe
 * predicts the object in that cell, one probe per cell, split by image (never by patch: neighbours leak). The
 * cell geometry comes from the task's generator parameters (rows, cols, cell_size) and the image's width: the
 * border is (width − cols·cell_size)/2, and the processor resizes the whole image to the tower's size.
 */
import type { TaskManifest } from '../data/task-format.ts';
import { type Matrix, matrix } from '../linalg/matrix.ts';
import { TlabError } from '../util/errors.ts';
import { linearProbe, type ProbeOptions, type ProbeResult } from './probes.ts';

export interface GridLayout {
  rows: number;
  cols: number;
  cellSize: number;
  /** Border around the cells, pixels of the original image. */
  pad: number;
  /** Original image width (= height) in pixels. */
  width: number;
}

/** Layout of a grid-world task's images. */
export function gridLayoutOf(manifest: TaskManifest, imageWidth: number, where: string): GridLayout {
  const g = manifest.generator;
  if (g?.name !== 'grid-world')
    throw new TlabError(
      `${where}: patch probes need a synthetic:grid-world task (this one is ${g?.name ?? manifest.source.dataset})`,
    );
  const rows = Number(g.params.rows);
  const cols = Number(g.params.cols);
  const cellSize = Number(g.params.cell_size);
  const pad = (imageWidth - cols * cellSize) / 2;
  if (!(rows > 0 && cols > 0 && cellSize > 0 && pad >= 0))
    throw new TlabError(
      `${where}: cannot read the grid layout (rows ${rows}, cols ${cols}, cell_size ${cellSize}, width ${imageWidth})`,
    );
  return { rows, cols, cellSize, pad, width: imageWidth };
}

/** For every cell (row-major), the patch indices whose centres fall inside it (at least the one at its centre). */
export function cellPatches(layout: GridLayout, grid: number): number[][] {
  const scale = layout.width / grid; // original pixels per patch
  const cellOf = (x: number) => Math.floor((x - layout.pad) / layout.cellSize);
  const cells: number[][] = Array.from({ length: layout.rows * layout.cols }, () => []);
  for (let pi = 0; pi < grid; pi++)
    for (let pj = 0; pj < grid; pj++) {
      const r = cellOf((pi + 0.5) * scale);
      const c = cellOf((pj + 0.5) * scale);
      if (r >= 0 && r < layout.rows && c >= 0 && c < layout.cols)
        cells[r * layout.cols + c].push(pi * grid + pj);
    }
  for (let r = 0; r < layout.rows; r++)
    for (let c = 0; c < layout.cols; c++) {
      const list = cells[r * layout.cols + c];
      if (list.length > 0) continue;
      const y = layout.pad + (r + 0.5) * layout.cellSize;
      const x = layout.pad + (c + 0.5) * layout.cellSize;
      list.push(Math.min(grid - 1, Math.floor(y / scale)) * grid + Math.min(grid - 1, Math.floor(x / scale)));
    }
  return cells;
}

/** The objects of a grid from its text form ("| a | b |" rows). */
export function parseGridText(text: string): string[][] {
  return text
    .trim()
    .split('\n')
    .map((line) =>
      line
        .trim()
        .replace(/^\|/, '')
        .replace(/\|$/, '')
        .split('|')
        .map((s) => s.trim()),
    );
}

export interface PatchProbeResult {
  layer: number;
  rows: number;
  cols: number;
  /** Held-out accuracy per cell [rows][cols]. */
  accuracy: number[][];
  /** Majority-class baseline per cell. */
  majority: number[][];
  /** Shuffled-label control per cell. */
  control: (number | null)[][];
  /** Chance for a uniform guess among the objects seen in each cell. */
  classes: number[][];
  images: number;
  patchesPerCell: number[][];
}

/**
 * One probe per grid cell on one layer's patch features: `x` is N×(P·D) (P patches of D dims per sample), `grids`
 * the grid of each sample; samples showing the same grid are the same image (one is kept).
 */
export function probeGridCells(
  x: Matrix,
  patches: number,
  grids: readonly string[][][],
  layout: GridLayout,
  layer: number,
  options: ProbeOptions = {},
): PatchProbeResult {
  const d = x.cols / patches;
  if (!Number.isInteger(d))
    throw new TlabError(`patch probe: ${x.cols} values per sample do not split into ${patches} patches`);
  const grid = Math.round(Math.sqrt(patches));
  if (grid * grid !== patches)
    throw new TlabError(`patch probe: ${patches} patches do not form a square grid`);
  // one sample per distinct image
  const seen = new Set<string>();
  const rows: number[] = [];
  grids.forEach((g, i) => {
    const key = JSON.stringify(g);
    if (!seen.has(key)) {
      seen.add(key);
      rows.push(i);
    }
  });
  const cells = cellPatches(layout, grid);
  const out: PatchProbeResult = {
    layer,
    rows: layout.rows,
    cols: layout.cols,
    accuracy: [],
    majority: [],
    control: [],
    classes: [],
    images: rows.length,
    patchesPerCell: [],
  };
  for (let r = 0; r < layout.rows; r++) {
    const acc: number[] = [];
    const maj: number[] = [];
    const ctl: (number | null)[] = [];
    const cls: number[] = [];
    const ppc: number[] = [];
    for (let c = 0; c < layout.cols; c++) {
      const list = cells[r * layout.cols + c];
      const f = matrix(rows.length, list.length * d);
      for (const [k, i] of rows.entries())
        for (const [q, p] of list.entries())
          f.data.set(x.data.subarray(i * x.cols + p * d, i * x.cols + (p + 1) * d), k * f.cols + q * d);
      const names = rows.map((i) => {
        const v = grids[i][r]?.[c];
        if (v === undefined)
          throw new TlabError(`patch probe: sample ${i} has no object at row ${r}, column ${c}`);
        return v;
      });
      const classes = [...new Set(names)].sort();
      const y = Int32Array.from(names, (v) => classes.indexOf(v));
      let p: ProbeResult | null = null;
      if (classes.length > 1)
        p = linearProbe(f, y, { ...options, name: `patches of cell (${r}, ${c}), layer ${layer}` });
      acc.push(p ? p.accuracy : 1);
      maj.push(p ? p.majority : 1);
      ctl.push(p ? p.control : null);
      cls.push(classes.length);
      ppc.push(list.length);
    }
    out.accuracy.push(acc);
    out.majority.push(maj);
    out.control.push(ctl);
    out.classes.push(cls);
    out.patchesPerCell.push(ppc);
  }
  return out;
}
