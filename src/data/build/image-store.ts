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
    // One full decode checks the pixels and gives the size; the magic bytes say whether to keep the file as is.
    const { info } = await sharp(bytes, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
    const format = sniffFormat(bytes);
    const data = format ? bytes : await toPng(bytes);
    const file = `images/${sha256.slice(0, 24)}.${format === 'jpeg' ? 'jpg' : 'png'}`;
    writeFileSync(join(this.taskDir, file), data);
    this.bytesWritten += data.byteLength;
    return { file, width: info.width, height: info.height, sha256 };
  }
}

/** PNG and JPEG by their magic bytes (files we store unchanged); undefined for anything else. */
function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}
