import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

/** Appends JSON lines through a 1 MiB buffer and hashes what it writes (the manifest records the SHA-256). */
export class JsonlWriter {
  private readonly fd: number;
  private readonly hash: Hash = createHash('sha256');
  private buffer = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  rows = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }

  write(value: unknown): void {
    const line = `${JSON.stringify(value)}\n`;
    const need = Buffer.byteLength(line);
    if (this.used + need > this.buffer.length) this.flush();
    if (need > this.buffer.length) this.buffer = Buffer.allocUnsafe(need * 2);
    this.used += this.buffer.write(line, this.used);
    this.rows++;
  }

  private flush(): void {
    if (this.used === 0) return;
    const chunk = this.buffer.subarray(0, this.used);
    this.hash.update(chunk);
    for (let done = 0; done < chunk.length; ) done += writeSync(this.fd, chunk, done);
    this.used = 0;
  }

  /** Closes without flushing (the build failed and its folder is removed). */
  abort(): void {
    try {
      closeSync(this.fd);
    } catch {}
  }

  /** Flushes, closes and returns the file's SHA-256. */
  close(): string {
    this.flush();
    closeSync(this.fd);
    return this.hash.digest('hex');
  }
}
