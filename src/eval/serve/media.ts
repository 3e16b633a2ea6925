/**
 * image_url parts of chat requests as image sources: base64 data URLs, and local files (file:// URLs or absolute
 * paths) inside the folders the server was told to read (`--allowed-local-media-path`, as vLLM). The server never
 * fetches anything from the network.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TlabError } from '../../util/errors.ts';
import { parseImageDataUrl } from '../inference/image-source.ts';
import type { ImageSource } from '../inference/types.ts';
import { badField } from './api-error.ts';

/** Turns an image URL of a request into a source; `param` names the field in the 400 answers. */
export function imageSourceOf(url: string, param: string, allowedRoots: readonly string[]): ImageSource {
  if (/^data:/i.test(url)) {
    try {
      return parseImageDataUrl(url, param);
    } catch (error) {
      if (error instanceof TlabError) throw badField(param, error.message.replace(`${param}: `, ''));
      throw error;
    }
  }
  if (/^https?:/i.test(url))
    throw badField(param, 'this server does not fetch remote images; send the image as a base64 data URL');
  let path: string;
  if (/^file:/i.test(url)) {
    try {
      path = fileURLToPath(url);
    } catch {
      throw badField(param, `'${url.slice(0, 80)}' is not a valid file:// URL`);
    }
  } else if (isAbsolute(url)) path = url;
  else throw badField(param, 'expected a data: URL, a file:// URL or an absolute path');
  if (allowedRoots.length === 0)
    throw badField(
      param,
      'local image files are off; start the server with --allowed-local-media-path <dir>, or send a data: URL',
    );
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw badField(param, `no such file: ${path}`);
  }
  const inside = allowedRoots.some((root) => {
    const rel = relative(root, real);
    return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  });
  if (!inside) throw badField(param, `${path} is outside the allowed local media paths`);
  return { path: real };
}

/** Resolves allowed media roots (real paths, so symlinks cannot escape them). */
export function resolveMediaRoots(roots: readonly string[]): string[] {
  return roots.map((r) => {
    try {
      return realpathSync(resolve(r));
    } catch {
      throw new TlabError(`--allowed-local-media-path: ${r}: no such folder`);
    }
  });
}
