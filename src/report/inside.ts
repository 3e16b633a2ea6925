/**
 * Containment of paths in the experiment folder: the dashboard serves, and the report embeds, only files whose
 * real path (symlinks resolved) lies inside it.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** True when `path` (already real) is `root` or below it. */
export function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * The real path of `relativePath` under `root` when it exists and stays inside `root` after resolving symlinks;
 * null otherwise. `root` must be a real path. The relative path must not be absolute or climb out (`..`).
 */
export function realPathInside(root: string, relativePath: string): string | null {
  if (isAbsolute(relativePath) || relativePath.includes('\0')) return null;
  const joined = resolve(join(root, relativePath));
  if (!isWithin(root, joined) || !existsSync(joined)) return null;
  let real: string;
  try {
    real = realpathSync(joined);
  } catch {
    return null;
  }
  return isWithin(root, real) ? real : null;
}

/** The real path of an absolute path when it lies inside `root` (e.g. a task folder an eval grid names). */
export function absoluteInside(root: string, absolutePath: string): string | null {
  if (!existsSync(absolutePath)) return null;
  try {
    const real = realpathSync(absolutePath);
    return isWithin(root, real) ? real : null;
  } catch {
    return null;
  }
}
