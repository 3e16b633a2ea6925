import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

let counter = 0;

/** A temporary name beside `path`, unique within this process, so a rename makes the write atomic. */
export function tempPathFor(path: string): string {
  counter += 1;
  return `${path}.tmp-${process.pid}-${counter}`;
}

/** Writes a file so that readers see either the old content or the complete new one, never a partial file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** Writes a JSON document atomically, pretty-printed with a trailing newline. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Writes byte chunks one after another into a temporary file beside `path`, then renames it. Each write call stays
 * below 2 GiB (Node's per-call limit), so multi-GB checkpoints and ONNX external data files work.
 */
export function writeChunksAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) {
      for (let at = 0; at < c.byteLength; ) at += writeSync(fd, c, at, Math.min(1 << 30, c.byteLength - at));
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {}
    rmSync(tmp, { force: true });
    throw error;
  }
}
