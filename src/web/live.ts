/**
 * Live updates: the experiment folder's result files are polled (name, size, modification time) and a change
 * of that fingerprint is pushed to every open page as a server-sent event, which then re-reads its view. Polling
 * is used rather than fs.watch because it behaves the same on every file system, including network mounts and
 * folders that cluster jobs copy in.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Folders read by the views, walked recursively (their large binary siblings are not). */
const WATCHED_TREES = [
  'runs',
  'cells',
  'grader_logs',
  'metrics',
  'geometry',
  'zoo_logs',
  'finetune_logs',
  'logs',
];
const WATCHED_FILES = [
  'summary.json',
  'eval_grid.json',
  'transfer.json',
  'plan.json',
  'results.csv',
  'formatted_datasets/bookmarks.json',
];
const SKIP = new Set(['representations', 'plots']);
const KINDS = /\.(json|jsonl|csv)$/;

export function folderFingerprint(dir: string): string {
  const h = createHash('sha256');
  const add = (path: string, rel: string) => {
    try {
      const st = statSync(path);
      h.update(`${rel}\0${st.size}\0${st.mtimeMs}\n`);
    } catch {
      // vanished between listing and stat: the next poll sees the new state
    }
  };
  const walk = (path: string, rel: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || SKIP.has(name) || name.includes('.tmp-')) continue;
      const p = join(path, name);
      let dirLike = false;
      try {
        dirLike = statSync(p).isDirectory();
      } catch {
        continue;
      }
      if (dirLike) {
        if (depth < 6) walk(p, `${rel}/${name}`, depth + 1);
      } else if (KINDS.test(name)) add(p, `${rel}/${name}`);
    }
  };
  for (const f of WATCHED_FILES) if (existsSync(join(dir, f))) add(join(dir, f), f);
  for (const d of WATCHED_TREES) walk(join(dir, d), d, 0);
  return h.digest('hex').slice(0, 16);
}

/** Polls the fingerprint every `intervalMs` and calls the listeners when it changes. */
export class FolderWatcher {
  private current: string;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(version: string) => void>();

  constructor(
    private readonly dir: string,
    private readonly intervalMs: number,
  ) {
    this.current = folderFingerprint(dir);
  }

  get version(): string {
    return this.current;
  }

  /** Re-reads the fingerprint now; returns it (listeners are called if it changed). */
  poll(): string {
    const next = folderFingerprint(this.dir);
    if (next !== this.current) {
      this.current = next;
      for (const l of this.listeners) l(next);
    }
    return next;
  }

  subscribe(listener: (version: string) => void): () => void {
    this.listeners.add(listener);
    if (!this.timer) {
      this.timer = setInterval(() => this.poll(), this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  close(): void {
    this.listeners.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
