/**
 * Image decode/encode with sharp (libvips): format sniffing, raw RGB pixels, PNG encoding, SVG rendering.
 * Everything returns plain Uint8Arrays so callers never handle sharp objects.
 */
import sharp from 'sharp';

// No operation cache: a long build decodes each image once, and the cache would only hold memory.
sharp.cache(false);

export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  channels: number;
}

/** Raw 8-bit pixels, row-major, interleaved channels (HWC). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** Reads the header (format and size) without decoding pixels; throws when the bytes are not an image. */
export async function imageInfo(bytes: Uint8Array): Promise<ImageInfo> {
  const meta = await sharp(bytes, { failOn: 'error' }).metadata();
  if (!meta.format || !meta.width || !meta.height) throw new Error('unrecognised image data');
  return { format: meta.format, width: meta.width, height: meta.height, channels: meta.channels ?? 3 };
}

/**
 * Decodes to RGB (alpha dropped, as PIL's convert('RGB') does; greyscale expanded). `failOn: 'error'` makes
 * truncated files an error instead of a partly grey image.
 */
export async function decodeRgb(bytes: Uint8Array): Promise<RawImage> {
  const { data, info } = await sharp(bytes, { failOn: 'error' })
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    channels: info.channels,
  };
}

/** Encodes raw pixels (1, 3 or 4 channels) as PNG. */
export async function encodePng(image: RawImage): Promise<Uint8Array> {
  const out = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels as 1 | 3 | 4 },
  })
    .png()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Re-encodes any decodable image as PNG (for formats we do not store as they are). */
export async function toPng(bytes: Uint8Array): Promise<Uint8Array> {
  const out = await sharp(bytes, { failOn: 'error' }).png().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Rasterises an SVG document (librsvg; fonts from fontconfig, DejaVu here) to PNG. */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  const out = await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Fully decodes to check the pixels are readable (headers alone can be intact in a truncated file). */
export async function verifyDecodable(bytes: Uint8Array): Promise<void> {
  await sharp(bytes, { failOn: 'error' }).raw().toBuffer();
}
