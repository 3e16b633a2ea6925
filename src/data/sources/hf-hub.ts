/**
 * Hugging Face hub datasets through the standard cache layout that `huggingface_hub` writes and reads:
 *   <HF_HUB_CACHE>/datasets--org--name/refs/<revision>          (the commit a branch or tag pointed to)
 *   <HF_HUB_CACHE>/datasets--org--name/snapshots/<commit>/<path> (symlinks into blobs/)
 *   <HF_HUB_CACHE>/datasets--org--name/blobs/<etag>              (LFS blobs are named by their SHA-256)
 * The cache is consulted first, and only a whole snapshot is used: hub-snapshot.ts checks it against the stored
 * file list (and shard numbering) and verifies LFS blobs by their SHA-256. Without a cached snapshot, or with an
 * incomplete one, and with a network, the file list comes from the hub's tree API; cached mode downloads the data
 * files (and the dataset card) into that layout, checking each LFS file's SHA-256 as it arrives, streaming mode
 * reads Parquet shards with HTTP range requests (nothing stored). HF_HUB_OFFLINE=1 forbids the network.
 * (HF_DATASETS_CACHE holds the `datasets` library's Arrow cache, a different format this tool does not read.)
 */
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asyncBufferFromUrl } from 'hyparquet';
import { TlabError } from '../../util/errors.ts';
import { sha256File } from '../hash.ts';
import { listFiles, splitsFromListing } from './hf-layout.ts';
import {
  checkSnapshot,
  incompleteError,
  markVerified,
  type RepoFile,
  readListing,
  saveListing,
  verifiedShard,
} from './hub-snapshot.ts';
import { ParquetFileReader } from './parquet-reader.ts';
import type { ShardSpec } from './tabular-source.ts';
import type { SourceMode } from './types.ts';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

export const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** `org/name` → `datasets--org--name`, the repo's folder in the cache. */
export function repoFolderName(repoId: string): string {
  return `datasets--${repoId.split('/').join('--')}`;
}

const COMMIT = /^[0-9a-f]{40}$/;

/** The cached snapshot folder of a revision, or undefined when the cache does not have it. */
export function cachedSnapshot(
  repoId: string,
  revision: string,
  cache = hubCacheDir(),
): { dir: string; commit: string } | undefined {
  const repo = join(cache, repoFolderName(repoId));
  let commit = revision;
  if (!COMMIT.test(revision)) {
    const ref = join(repo, 'refs', revision);
    if (!existsSync(ref)) return undefined;
    commit = readFileSync(ref, 'utf8').trim();
  }
  const dir = join(repo, 'snapshots', commit);
  return existsSync(dir) ? { dir, commit } : undefined;
}

export interface HubDataset {
  commit: string;
  root: string;
  splits: Map<string, ShardSpec[]>;
  /** Where the files are: the cache, downloaded just now into it, or read remotely. */
  origin: 'cache' | 'download' | 'remote';
}

interface TreeEntry {
  type: string;
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid?: string; sha256?: string; size?: number };
}

function authHeaders(): Record<string, string> {
  const token = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The hub could not be reached at all (as opposed to answering with an error). */
class HubUnreachable extends TlabError {
  constructor(
    message: string,
    details: string,
    readonly reason: string,
  ) {
    super(message, details);
  }
}

async function hubFetch(url: string, repoId: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers: authHeaders(), redirect: 'follow' });
  } catch (error) {
    const reason = `cannot reach ${new URL(url).host}: ${(error as Error).cause ?? (error as Error).message}`;
    const e = offline(repoId, reason);
    throw new HubUnreachable(e.message, e.details ?? '', reason);
  }
  if (response.status === 401 || response.status === 403 || response.status === 404)
    throw new TlabError(
      `${repoId}: the hub answered ${response.status} for ${new URL(url).pathname}`,
      'check the dataset id and revision; gated or private datasets need HF_TOKEN',
    );
  if (!response.ok) throw new TlabError(`${repoId}: the hub answered ${response.status} for ${url}`);
  return response;
}

function offline(repoId: string, reason: string): TlabError {
  return new TlabError(
    `${repoId}: not in the Hugging Face cache (${join(hubCacheDir(), repoFolderName(repoId))}) and ${reason}`,
    'download it where there is a network (or copy that cache folder here), or set HF_HUB_CACHE / HF_HOME to a cache that has it',
  );
}

function offlineSet(): boolean {
  return process.env.HF_HUB_OFFLINE === '1' || process.env.HF_DATASETS_OFFLINE === '1';
}

/**
 * Resolves a hub dataset: a whole cached snapshot first, then the network (download for cached mode, range reads
 * for streaming). A snapshot that lacks files is finished from the network, or is an error naming what is missing.
 */
export async function resolveHubDataset(
  repoId: string,
  revision: string,
  subset: string | undefined,
  mode: SourceMode,
): Promise<HubDataset> {
  const cached = cachedSnapshot(repoId, revision);
  if (cached) {
    const repo = join(hubCacheDir(), repoFolderName(repoId));
    const listing = readListing(repo, cached.commit);
    const layout = snapshotLayout(cached.dir, listing, subset, repoId);
    const { missing } = checkSnapshot(cached.dir, [...layout.values()].flat(), listing);
    if (missing.length === 0) {
      const listed = new Map((listing ?? []).map((f) => [f.path, f]));
      const splits = new Map<string, ShardSpec[]>();
      for (const [split, paths] of layout) {
        const specs: ShardSpec[] = [];
        for (const p of paths) specs.push(await verifiedShard(repoId, repo, cached.dir, p, listed.get(p)));
        splits.set(split, specs);
      }
      return { commit: cached.commit, root: cached.dir, splits, origin: 'cache' };
    }
    if (offlineSet())
      throw incompleteError(
        repoId,
        cached.dir,
        missing,
        'HF_HUB_OFFLINE is set, so the rest cannot be downloaded: download it again where there is a network',
      );
    try {
      return await fromNetwork(repoId, COMMIT.test(revision) ? revision : cached.commit, subset, mode);
    } catch (error) {
      if (!(error instanceof HubUnreachable)) throw error;
      throw incompleteError(repoId, cached.dir, missing, `the rest cannot be downloaded (${error.reason})`);
    }
  }
  if (offlineSet()) throw offline(repoId, 'HF_HUB_OFFLINE is set');
  return fromNetwork(repoId, revision, subset, mode);
}

/** The split layout of a snapshot: from the stored repository listing when there is one, else from its files. */
function snapshotLayout(
  dir: string,
  listing: readonly RepoFile[] | undefined,
  subset: string | undefined,
  repoId: string,
): Map<string, string[]> {
  const readme = join(dir, 'README.md');
  return splitsFromListing(
    listing ? listing.map((f) => f.path).sort() : listFiles(dir),
    existsSync(readme) ? readFileSync(readme, 'utf8') : undefined,
    subset,
    repoId,
  );
}

async function fromNetwork(
  repoId: string,
  revision: string,
  subset: string | undefined,
  mode: SourceMode,
): Promise<HubDataset> {
  const endpoint = hubEndpoint();
  const info = (await (
    await hubFetch(`${endpoint}/api/datasets/${repoId}/revision/${encodeURIComponent(revision)}`, repoId)
  ).json()) as { sha?: string };
  const commit = info.sha;
  if (!commit || !COMMIT.test(commit))
    throw new TlabError(`${repoId}: the hub gave no commit for revision '${revision}'`);
  const tree = await listTree(endpoint, repoId, commit);
  const byPath = new Map(tree.map((e) => [e.path, e]));
  const readme = byPath.has('README.md')
    ? await (await hubFetch(resolveUrl(endpoint, repoId, commit, 'README.md'), repoId)).text()
    : undefined;
  const layout = splitsFromListing([...byPath.keys()].sort(), readme, subset, repoId);
  const repo = join(hubCacheDir(), repoFolderName(repoId));
  const snapshot = join(repo, 'snapshots', commit);
  const splits = new Map<string, ShardSpec[]>();
  const allRemote = mode === 'streaming' && [...layout.values()].flat().every((p) => p.endsWith('.parquet'));
  if (!allRemote) {
    // The file list first, so that a download cut short is seen as incomplete later; then the card, which
    // decides the layout when the cache is read again.
    saveListing(
      repo,
      commit,
      tree.map((e) => ({ path: e.path, size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid ?? e.lfs?.sha256 })),
    );
    if (!COMMIT.test(revision)) {
      // As huggingface_hub: the ref is recorded before the files, so a later run finds (and checks) the snapshot.
      mkdirSync(join(repo, 'refs', dirname(revision)), { recursive: true });
      writeFileSync(join(repo, 'refs', revision), commit);
    }
    if (byPath.has('README.md'))
      await downloadToCache(
        repoId,
        repo,
        snapshot,
        'README.md',
        resolveUrl(endpoint, repoId, commit, 'README.md'),
        byPath.get('README.md'),
      );
  }
  for (const [split, paths] of layout) {
    const specs: ShardSpec[] = [];
    for (const path of paths) {
      const entry = byPath.get(path);
      const sha256 = entry?.lfs?.oid ?? entry?.lfs?.sha256;
      const bytes = entry?.lfs?.size ?? entry?.size;
      const url = resolveUrl(endpoint, repoId, commit, path);
      if (allRemote) {
        specs.push({
          displayPath: path,
          absolutePath: url,
          sha256,
          bytes,
          openRemote: async (m) =>
            ParquetFileReader.open(
              path,
              url,
              m,
              await asyncBufferFromUrl({ url, byteLength: bytes, requestInit: { headers: authHeaders() } }),
            ),
        });
      } else {
        await downloadToCache(repoId, repo, snapshot, path, url, entry);
        specs.push(
          await verifiedShard(repoId, repo, snapshot, path, {
            path,
            size: bytes,
            sha256,
          }),
        );
      }
    }
    splits.set(split, specs);
  }
  return { commit, root: snapshot, splits, origin: allRemote ? 'remote' : 'download' };
}

function resolveUrl(endpoint: string, repoId: string, commit: string, path: string): string {
  return `${endpoint}/datasets/${repoId}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

async function listTree(endpoint: string, repoId: string, commit: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  let url: string | undefined =
    `${endpoint}/api/datasets/${repoId}/tree/${commit}?recursive=true&expand=false`;
  while (url) {
    const response = await hubFetch(url, repoId);
    out.push(...((await response.json()) as TreeEntry[]).filter((e) => e.type === 'file'));
    const next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get('link') ?? '');
    url = next ? new URL(next[1], endpoint).toString() : undefined;
  }
  return out;
}

/**
 * Downloads one file into blobs/ (temp name, then rename) and links it from the snapshot, as huggingface_hub does.
 * An LFS file's bytes must hash to the SHA-256 the hub listed, or nothing is kept.
 */
async function downloadToCache(
  repoId: string,
  repo: string,
  snapshot: string,
  path: string,
  url: string,
  entry: TreeEntry | undefined,
): Promise<void> {
  const link = join(snapshot, path);
  if (existsSync(link)) return;
  const response = await hubFetch(url, repoId);
  const etag = (
    response.headers.get('x-linked-etag') ??
    response.headers.get('etag') ??
    entry?.lfs?.oid ??
    entry?.oid ??
    ''
  )
    .replace(/^W\//, '')
    .replace(/"/g, '');
  if (!etag) throw new TlabError(`${repoId}: ${path}: the hub sent no ETag to name the blob`);
  const blob = join(repo, 'blobs', etag);
  mkdirSync(dirname(blob), { recursive: true });
  if (!existsSync(blob)) {
    const tmp = `${blob}.incomplete`;
    if (!response.body) throw new TlabError(`${repoId}: ${path}: empty response`);
    try {
      await pipeline(
        Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
        createWriteStream(tmp),
      );
    } catch (error) {
      rmSync(tmp, { force: true });
      throw new TlabError(`${repoId}: ${path}: download failed: ${(error as Error).message}`);
    }
    const want = entry?.lfs?.oid ?? entry?.lfs?.sha256;
    if (want) {
      const got = await sha256File(tmp);
      if (got !== want) {
        rmSync(tmp, { force: true });
        throw new TlabError(
          `${repoId}: ${path}: the downloaded bytes have SHA-256 ${got}, the hub lists ${want}; nothing was kept`,
          'try again; if it persists, the server or a proxy alters the file',
        );
      }
    }
    renameSync(tmp, blob);
    if (want) markVerified(repo, want, blob);
  } else await response.body?.cancel();
  mkdirSync(dirname(link), { recursive: true });
  rmSync(link, { force: true }); // a dangling link left by a blob that went missing
  symlinkSync(relative(dirname(link), blob), link);
}
