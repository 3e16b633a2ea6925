/**
 * Image sources as bytes with their media type, and as data URLs (RFC 2397), the way OpenAI-compatible servers
 * take images in chat requests. The media type comes from the file's signature, not its name.
 */
import { readFile } from 'node:fs/promises';
import { TlabError } from '../../util/errors.ts';
import type { ImageSource } from './types.ts';

export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'] as const;

/** The media type of encoded image bytes from their signature, or undefined for an unknown format. */
export function sniffImageType(bytes: Uint8Array): string | undefined {
  const starts = (sig: number[], at = 0) => sig.every((b, i) => bytes[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (starts([0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  if (starts([0x47, 0x49, 0x46, 0x38])) return 'image/gif';
  return undefined;
}

/** An image's encoded bytes and media type; `where` names the request part in errors. */
export async function readImageSource(
  source: ImageSource,
  where: string,
): Promise<{ bytes: Uint8Array; mediaType: string }> {
  if ('bytes' in source) {
    const mediaType = sniffImageType(source.bytes) ?? source.mediaType;
    return { bytes: source.bytes, mediaType };
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source.path);
  } catch (error) {
    throw new TlabError(
      `${where}: cannot read image ${source.path} (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  const mediaType = sniffImageType(bytes);
  if (!mediaType)
    throw new TlabError(
      `${where}: ${source.path} is not an image in a known format; valid: ${IMAGE_MEDIA_TYPES.join(', ')}`,
    );
  return { bytes, mediaType };
}

/** `data:<type>;base64,<bytes>` of an image source. */
export async function imageDataUrl(source: ImageSource, where: string): Promise<string> {
  const { bytes, mediaType } = await readImageSource(source, where);
  return `data:${mediaType};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** The bytes of a base64 data URL of an image; throws a TlabError naming `where` for anything else. */
export function parseImageDataUrl(url: string, where: string): { bytes: Uint8Array; mediaType: string } {
  const match = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w.+-]+=[^;,]*)*);base64,/i.exec(url);
  if (!match)
    throw new TlabError(
      `${where}: expected a base64 data URL (data:image/png;base64,...), got '${url.slice(0, 40)}'`,
    );
  const payload = url.slice(match[0].length);
  if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(payload))
    throw new TlabError(`${where}: the data URL's payload is not valid base64`);
  const bytes = new Uint8Array(Buffer.from(payload, 'base64'));
  const mediaType = sniffImageType(bytes);
  if (!mediaType)
    throw new TlabError(
      `${where}: the data URL does not hold an image in a known format; valid: ${IMAGE_MEDIA_TYPES.join(', ')}`,
    );
  return { bytes, mediaType };
}
