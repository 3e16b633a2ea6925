/**
 * A persistent list of interesting examples (task + uid + note), kept in `bookmarks.json` beside the task
 * folders so rebuilding a task keeps it. `next` walks the list in a cycle and remembers where it is.
 * Every change is written atomically.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';

export interface Bookmark {
  task: string;
  uid: string;
  note?: string;
}

interface BookmarkFile {
  bookmarks: Bookmark[];
  /** Index of the bookmark `next` returned last (-1 before the first call). */
  cursor: number;
}

export class Bookmarks {
  private data: BookmarkFile;

  constructor(readonly path: string) {
    this.data = Bookmarks.read(path);
  }

  private static read(path: string): BookmarkFile {
    if (!existsSync(path)) return { bookmarks: [], cursor: -1 };
    try {
      const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<BookmarkFile>;
      if (!Array.isArray(parsed.bookmarks)) throw new Error("no 'bookmarks' list");
      return { bookmarks: parsed.bookmarks, cursor: typeof parsed.cursor === 'number' ? parsed.cursor : -1 };
    } catch (error) {
      // Never silently drop someone's bookmarks: say what is wrong and leave the file alone.
      throw new TlabError(
        `${path}: not a bookmarks file: ${(error as Error).message}`,
        'fix or remove the file',
      );
    }
  }

  list(task?: string): Bookmark[] {
    return this.data.bookmarks.filter((b) => task === undefined || b.task === task);
  }

  /** Adds (or updates the note of) a bookmark; returns false when it was already there. */
  add(task: string, uid: string, note?: string): boolean {
    const existing = this.data.bookmarks.find((b) => b.task === task && b.uid === uid);
    if (existing) {
      if (note !== undefined) existing.note = note;
      this.save();
      return false;
    }
    this.data.bookmarks.push(note === undefined ? { task, uid } : { task, uid, note });
    this.save();
    return true;
  }

  remove(task: string, uid: string): boolean {
    const before = this.data.bookmarks.length;
    const index = this.data.bookmarks.findIndex((b) => b.task === task && b.uid === uid);
    if (index < 0) return false;
    this.data.bookmarks.splice(index, 1);
    if (this.data.cursor >= index) this.data.cursor--;
    this.save();
    return this.data.bookmarks.length < before;
  }

  /** The bookmark after the last one returned (wrapping around), optionally only of one task. */
  next(task?: string): Bookmark | undefined {
    const all = this.data.bookmarks;
    for (let step = 1; step <= all.length; step++) {
      const i = (((this.data.cursor + step) % all.length) + all.length) % all.length;
      if (task === undefined || all[i].task === task) {
        this.data.cursor = i;
        this.save();
        return all[i];
      }
    }
    return undefined;
  }

  private save(): void {
    writeJsonAtomic(this.path, this.data);
  }
}
