/** Fixtures built by the tests themselves: Parquet files in Hugging Face layout, PNGs, temp folders. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SchemaElement } from 'hyparquet';
import { parquetWriteFile } from 'hyparquet-writer';
import sharp from 'sharp';

export function tempDir(prefix = 'tlab-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small solid-colour PNG (distinct colours give distinct bytes). */
export async function solidPng(r: number, g: number, b: number, size = 8): Promise<Uint8Array> {
  const out = await sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
  return new Uint8Array(out);
}

export interface VqaRow {
  id: string;
  question: string;
  answer: string;
  image: { bytes: Uint8Array; path: string } | null;
}

/** Writes rows like a `datasets` image dataset: an `image` struct {bytes, path} plus string columns. */
export function writeVqaParquet(path: string, rows: VqaRow[], rowGroupSize = 4): void {
  const schema: SchemaElement[] = [
    { name: 'root', num_children: 4 },
    { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    { name: 'question', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    { name: 'answer', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    { name: 'image', repetition_type: 'OPTIONAL', num_children: 2 },
    { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
    { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  ];
  parquetWriteFile({
    filename: path,
    schema,
    rowGroupSize,
    kvMetadata: [
      { key: 'huggingface', value: JSON.stringify({ info: { features: { image: { _type: 'Image' } } } }) },
    ],
    columnData: [
      { name: 'id', data: rows.map((r) => r.id) },
      { name: 'question', data: rows.map((r) => r.question) },
      { name: 'answer', data: rows.map((r) => r.answer) },
      { name: 'image', data: rows.map((r) => r.image) },
    ],
  });
}

export async function vqaRows(n: number, prefix = 'q'): Promise<VqaRow[]> {
  const rows: VqaRow[] = [];
  for (let i = 0; i < n; i++)
    rows.push({
      id: `${prefix}${i}`,
      question: `What colour is image ${i}?`,
      answer: i % 2 ? 'red' : 'blue',
      image: { bytes: await solidPng(i % 2 ? 200 : 10, (i * 37) % 256, 40), path: `img${i}.png` },
    });
  return rows;
}
