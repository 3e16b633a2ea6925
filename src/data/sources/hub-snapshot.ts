/**
 * Is a cached hub snapshot whole, and are its blobs what they claim to be? A snapshot folder only holds what was
 * downloaded, so an interrupted download looks like a smaller dataset. Checks, before any row is read:
 *  - the repository's file list, when known (this tool stores the hub's listing beside the snapshot before it
 *    downloads, in `<repo>/.tlab/<commit>.files.json`): every data file of the layout, and the dataset card, must
 *    be in the snapshot;
 *  - numbered shards (`train-00001-of-00003.parquet`) must all be there, listing or not;
 *  - a link must reach its blob, and a blob named by a SHA-256 (Git LFS) must hash to its name (and to the
 *    listing's size and hash). A verified blob gets a marker (size and mtime) so it is hashed once, not per build.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { sha256File } from '../hash.ts';
import type { ShardSpec } from './tabular-source.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/** One file of a repository listing (the hub's tree API). */
export interface RepoFile {
  path: string;
  size?: number;
  /** LFS files: the content's SHA-256. */
  sha256?: string;
}

const TOOL_DIR = '.tlab';

export function listingPath(repoDir: string, commit: string): string {
  return join(repoDir, TOOL_DIR, `${commit}.files.json`);
}

/** Records the repository's files at `commit` (before the download starts, so an interruption is detectable). */
export function saveListing(repoDir: string, commit: string, files: readonly RepoFile[]): void {
  mkdirSync(join(repoDir, TOOL_DIR), { recursive: true });
  writeJsonAtomic(listingPath(repoDir, commit), { commit, files });
}

/** The stored listing of `commit`, or undefined when none was stored (a cache filled by another tool). */
export function readListing(repoDir: string, commit: string): RepoFile[] | undefined {
  const path = listingPath(repoDir, commit);
  if (!existsSync(path)) return undefined;
  let doc: { files?: unknown };
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TlabError(
      `${path}: not valid JSON (${(error as Error).message})`,
      'delete it; the next download with a network writes it again',
    );
  }
  const files = doc.files;
  if (!Array.isArray(files) || !files.every((f) => f && typeof f.path === 'string'))
    throw new TlabError(`${path}: expected {files: [{path, size, sha256}]}`, 'delete it and download again');
  return files as RepoFile[];
}

const NUMBERED = /^(.*)-(\d+)-of-(\d+)(\.[^/]*)$/;

/** Numbered shards whose siblings say they should exist but that are not in `present`. */
export function numberedShardGaps(present: readonly string[]): string[] {
  const have = new Set(present);
  const groups = new Map<string, { prefix: string; width: number; total: string; ext: string }>();
  for (const p of present) {
    const m = NUMBERED.exec(p);
    if (!m) continue;
    const [, prefix, index, total, ext] = m;
    groups.set(`${prefix}\0${total}\0${ext}\0${index.length}`, { prefix, width: index.length, total, ext });
  }
  const gaps: string[] = [];
  for (const { prefix, width, total, ext } of groups.values()) {
    const count = Number(total);
    if (!Number.isSafeInteger(count) || count > 100_000) continue;
    for (let i = 0; i < count; i++) {
      const name = `${prefix}-${String(i).padStart(width, '0')}-of-${total}${ext}`;
      if (!have.has(name)) gaps.push(name);
    }
  }
  return gaps.sort();
}

/** Present files of the layout whose link leads nowhere (a blob deleted or never finished). */
function dangling(snapshot: string, paths: readonly string[]): string[] {
  return paths.filter((p) => {
    const abs = join(snapshot, p);
    try {
      lstatSync(abs);
    } catch {
      return false; // absent altogether: reported as missing
    }
    return !existsSync(abs);
  });
}

export interface SnapshotCheck {
  /** Files the snapshot should have but lacks (or whose link is dangling), sorted. */
  missing: string[];
}

/**
 * What a snapshot lacks for this layout: data files absent or dangling, numbered shards with gaps, and (with a
 * listing) every layout file and the dataset card the listing names.
 */
export function checkSnapshot(
  snapshot: string,
  layoutFiles: readonly string[],
  listing: readonly RepoFile[] | undefined,
): SnapshotCheck {
  const wanted = new Set(layoutFiles);
  if (listing?.some((f) => f.path === 'README.md')) wanted.add('README.md');
  const present = [...wanted].filter((p) => existsSync(join(snapshot, p)));
  const missing = new Set([...wanted].filter((p) => !present.includes(p)));
  for (const p of dangling(snapshot, [...wanted])) missing.add(p);
  for (const p of numberedShardGaps([...wanted])) missing.add(p);
  return { missing: [...missing].sort() };
}

export function incompleteError(
  repoId: string,
  snapshot: string,
  missing: readonly string[],
  why: string,
): TlabError {
  const shown = missing.slice(0, 5).join(', ');
  const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
  return new TlabError(
    `${repoId}: the cached snapshot is incomplete: ${missing.length === 1 ? `${shown} is missing` : `${missing.length} files are missing (${shown}${more})`}`,
    `snapshot: ${snapshot}; ${why}`,
  );
}

function markerPath(repoDir: string, sha: string): string {
  return join(repoDir, TOOL_DIR, 'verified', sha);
}

/**
 * The shard as a ShardSpec whose sha256 is verified: a blob named by a SHA-256 (or listed with one) is hashed
 * and compared, once per blob (a marker with its size and mtime records the check). Other files are left for the
 * fingerprint to hash.
 */
export async function verifiedShard(
  repoId: string,
  repoDir: string,
  snapshot: string,
  path: string,
  listed?: RepoFile,
): Promise<ShardSpec> {
  const absolutePath = join(snapshot, path);
  let blob: string | undefined;
  if (lstatSync(absolutePath).isSymbolicLink())
    blob = resolve(dirname(absolutePath), readlinkSync(absolutePath));
  const named = blob && SHA256.test(basename(blob)) ? basename(blob) : undefined;
  const expected = listed?.sha256 ?? named;
  const size = statSync(absolutePath).size;
  const where = blob ? `${path} (blob ${blob})` : path;
  if (listed?.size !== undefined && listed.size !== size)
    throw damaged(repoId, where, `has ${size} bytes, the repository's file has ${listed.size}`);
  if (!expected) return { displayPath: path, absolutePath };
  if (named && listed?.sha256 && named !== listed.sha256)
    throw damaged(repoId, where, `is named ${named} but the repository lists SHA-256 ${listed.sha256}`);
  const marker = markerPath(repoDir, expected);
  if (!(existsSync(marker) && readFileSync(marker, 'utf8') === stampOf(absolutePath))) {
    const actual = await sha256File(absolutePath);
    if (actual !== expected)
      throw damaged(
        repoId,
        where,
        `has SHA-256 ${actual}, expected ${expected}: it is damaged or partly written`,
      );
    markVerified(repoDir, expected, absolutePath);
  }
  return { displayPath: path, absolutePath, sha256: expected, bytes: size };
}

function stampOf(file: string): string {
  const st = statSync(file);
  return `${st.size} ${st.mtimeMs}`;
}

/** Records that the blob at `file` hashed to `sha` (a download that was checked as it arrived). */
export function markVerified(repoDir: string, sha: string, file: string): void {
  const marker = markerPath(repoDir, sha);
  mkdirSync(dirname(marker), { recursive: true });
  writeFileAtomic(marker, stampOf(file)); // written whole or not at all: a torn marker must not pass
}

function damaged(repoId: string, where: string, what: string): TlabError {
  return new TlabError(
    `${repoId}: ${where} ${what}`,
    'delete that file from the Hugging Face cache and download the dataset again (or copy a good cache here)',
  );
}
