/**
 * Content fingerprints of model folders for the grid's cache keys: the SHA-256 of every file in the folder
 * (weights, config, tokenizer, processor), so a retrained model is re-evaluated even under the same name. Hashes
 * are cached by (path, size, mtime) in the grid folder, so an unchanged 10 GB folder is not read again.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../../data/canonical-json.ts';
import { sha256File, sha256Hex } from '../../data/hash.ts';
import { writeJsonAtomic } from '../../util/atomic-write.ts';

interface CacheEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

export class HashCache {
  private readonly entries: Record<string, CacheEntry>;
  private dirty = false;

  constructor(readonly path: string) {
    let loaded: Record<string, CacheEntry> = {};
    if (existsSync(path)) {
      try {
        loaded = JSON.parse(readFileSync(path, 'utf8')) as Record<string, CacheEntry>;
      } catch {
        // A cache that does not parse is rebuilt: it only saves time.
      }
    }
    this.entries = loaded;
  }

  async file(path: string): Promise<string> {
    const st = statSync(path);
    const hit = this.entries[path];
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha256;
    const sha256 = await sha256File(path);
    this.entries[path] = { size: st.size, mtimeMs: st.mtimeMs, sha256 };
    this.dirty = true;
    return sha256;
  }

  save(): void {
    if (this.dirty) writeJsonAtomic(this.path, this.entries);
    this.dirty = false;
  }
}

/** SHA-256 over the names and contents of a folder's files (hidden files and subfolders left out). */
export async function folderFingerprint(dir: string, cache: HashCache): Promise<string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    files[name] = await cache.file(path);
  }
  return sha256Hex(canonicalJson(files));
}
