/**
 * Image classification folders: `root/<class>/<image>` (one split, `train`) or `root/<split>/<class>/<image>`
 * when the top folders are split names. Each row is `{image: {bytes, path}, label, file}`; bytes are read
 * when the row is produced, so streaming holds one image at a time.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import { sha256File } from '../hash.ts';
import { listFiles, orderSplits, splitOfPath } from './hf-layout.ts';
import type { DataSource, SourceFingerprint, SourceMode, SourceRecord, SourceSplit } from './types.ts';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff'];

export function isImageFile(path: string): boolean {
  const lower = path.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

interface Entry {
  file: string;
  label: string;
}

export class ImageFolderSource implements DataSource {
  readonly columns = ['image', 'label', 'file'];
  readonly splits: SourceSplit[];
  readonly labels: string[];
  readonly defaults = {
    image_column: 'image',
    label_column: 'label',
    assistant_text_column: 'label',
    user_prompt: 'What is shown in this image? Answer with one word.',
  };

  private constructor(
    readonly root: string,
    readonly description: string,
    private readonly entries: Map<string, Entry[]>,
    private readonly mode: SourceMode,
  ) {
    this.splits = [...entries].map(([name, list]) => ({ name, numRows: list.length }));
    this.labels = [...new Set([...entries.values()].flat().map((e) => e.label))].sort();
  }

  static open(root: string, description: string, mode: SourceMode): ImageFolderSource {
    const images = listFiles(root).filter(isImageFile);
    if (images.length === 0)
      throw new TlabError(`${description}: no image files found`, `expected ${IMAGE_EXTENSIONS.join(', ')}`);
    const tops = [...new Set(images.map((f) => f.split('/')[0]))];
    const bySplit = images.every((f) => f.split('/').length === 3) && tops.every((t) => splitOfPath(t) === t);
    const entries = new Map<string, Entry[]>();
    for (const file of images) {
      const parts = file.split('/');
      const expected = bySplit ? 3 : 2;
      if (parts.length !== expected)
        throw new TlabError(
          `${description}: ${file}: expected ${bySplit ? '<split>/<class>/<image>' : '<class>/<image>'}`,
          'an image folder holds one folder per class (optionally inside train/validation/test folders)',
        );
      const split = bySplit ? parts[0] : 'train';
      const list = entries.get(split) ?? [];
      list.push({ file, label: parts[expected - 2] });
      entries.set(split, list);
    }
    return new ImageFolderSource(root, description, orderSplits(entries), mode);
  }

  async *rows(split: string, selected?: Uint8Array): AsyncIterable<SourceRecord> {
    const list = this.entries.get(split) ?? [];
    // Cached mode reads ahead in batches; streaming holds one image at a time.
    const batch = this.mode === 'cached' ? 256 : 1;
    for (let start = 0; start < list.length; start += batch) {
      const idx: number[] = [];
      for (let i = start; i < Math.min(list.length, start + batch); i++)
        if (!selected || selected[i]) idx.push(i);
      const bytes = await Promise.all(idx.map((i) => readFile(join(this.root, list[i].file))));
      for (let k = 0; k < idx.length; k++) {
        const { file, label } = list[idx[k]];
        yield {
          index: idx[k],
          row: { image: { bytes: new Uint8Array(bytes[k]), path: file }, label, file },
          file,
          fileRow: 0,
        };
      }
    }
  }

  async fingerprint(): Promise<SourceFingerprint> {
    const files = [];
    for (const list of this.entries.values())
      for (const { file } of list) {
        const path = join(this.root, file);
        files.push({ path: file, bytes: (await stat(path)).size, sha256: await sha256File(path) });
      }
    return { kind: 'imagefolder', dataset: this.description, files };
  }

  async close(): Promise<void> {}
}
