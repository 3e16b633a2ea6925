/**
 * Maps the raw path of a file request to a file inside the experiment folder, refusing anything that could name
 * a file outside it. The raw (undecoded) path is split first and each segment decoded on its own, so encoded
 * separators and dots (`%2e%2e`, `..%2f`, `%2F`, `%5C`) are seen for what they are; `.` and `..` segments,
 * empty segments (`//`, a leading `/` after the prefix), backslashes and NUL are 400s. Hidden names (a leading
 * dot), missing files, folders and symlinks that resolve outside the folder are 404s.
 */
import { statSync } from 'node:fs';
import { realPathInside } from '../report/inside.ts';

export type FileLookup = { ok: true; path: string } | { ok: false; status: 400 | 404; reason: string };

export function lookupRequestPath(root: string, rawPath: string): FileLookup {
  const raw = rawPath.split('?')[0].split('#')[0];
  if (raw === '') return { ok: false, status: 404, reason: 'no file named' };
  const parts: string[] = [];
  for (const segment of raw.split('/')) {
    if (segment === '') return { ok: false, status: 400, reason: 'empty path segment' };
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return { ok: false, status: 400, reason: 'malformed percent-encoding' };
    }
    if (name === '.' || name === '..') return { ok: false, status: 400, reason: 'path traversal' };
    if (/[/\\\0]/.test(name))
      return { ok: false, status: 400, reason: 'separator or NUL inside a path segment' };
    if (name.startsWith('.')) return { ok: false, status: 404, reason: 'hidden files are not served' };
    parts.push(name);
  }
  const path = realPathInside(root, parts.join('/'));
  if (!path) return { ok: false, status: 404, reason: 'not found inside the experiment folder' };
  try {
    if (!statSync(path).isFile()) return { ok: false, status: 404, reason: 'not a file' };
  } catch {
    return { ok: false, status: 404, reason: 'not found' };
  }
  return { ok: true, path };
}

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.yaml': 'text/plain; charset=utf-8',
  '.yml': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};
