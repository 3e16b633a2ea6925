/**
 * Writes each distinct image once into the task's `images/` folder, named by the SHA-256 of its bytes, so
 * rows that share an image (several questions per grid, few-shot examples) point at one file and the names
 * are the same on every build. PNG and JPEG are stored as they are; other formats are converted to PNG.
 * Every image is fully decoded once, so a truncated or corrupt image fails the build, not training.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { sha256Hex } from '../hash.ts';
import { toPng } from '../images/codec.ts';

export interface StoredImage {
  /** Path relative to the task folder: `images/<hash>.png`. */
  file: string;
  width: number;
  height: number;
  sha256: string;
}

export class ImageStore {
  private readonly stored = new Map<string, Promise<StoredImage>>();
  private bytesWritten = 0;

  constructor(private readonly taskDir: string) {
    mkdirSync(join(taskDir, 'images'), { recursive: true });
  }

  get count(): number {
    return this.stored.size;
  }

  get bytes(): number {
    return this.bytesWritten;
  }

  /** Stores the image (once per distinct content); rejects with sharp's reason when it cannot be decoded. */
  add(bytes: Uint8Array): Promise<StoredImage> {
    const sha256 = sha256Hex(bytes);
    let entry = this.stored.get(sha256);
    if (!entry) {
      entry = this.write(bytes, sha256);
      this.stored.set(sha256, entry);
    }
    return entry;
  }

  private async write(bytes: Uint8Array, sha256: string): Promise<StoredImage> {
    const image = sharp(bytes, { failOn: 'error' });
    const meta = await image.metadata();
    const { info } = await image.raw().toBuffer({ resolveWithObject: true });
    const keep = meta.format === 'png' || meta.format === 'jpeg';
    const data = keep ? bytes : await toPng(bytes);
    const file = `images/${sha256.slice(0, 24)}.${meta.format === 'jpeg' ? 'jpg' : 'png'}`;
    writeFileSync(join(this.taskDir, file), data);
    this.bytesWritten += data.byteLength;
    return { file, width: info.width, height: info.height, sha256 };
  }
}
