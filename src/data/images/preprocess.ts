/**
 * Model input preparation driven by a Hugging Face `preprocessor_config.json` (ViT, CLIP, SigLIP and other
 * fixed-resolution processors): convert to RGB, resize (shortest edge or exact size, Pillow filters), centre
 * crop, rescale, normalize, channels first; then optionally cut into patches for a ViT patch embedding.
 * Arithmetic follows transformers' image_transforms (rescale in float64 then float32, normalize in float32).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { TlabError } from '../../util/errors.ts';
import { zodIssuesError } from '../config.ts';
import { decodeRgb, type RawImage } from './codec.ts';
import { type ResampleCode, resizeImage } from './resample.ts';

const sizeDict = z
  .object({
    shortest_edge: z.int().min(1).optional(),
    longest_edge: z.int().min(1).optional(),
    height: z.int().min(1).optional(),
    width: z.int().min(1).optional(),
  })
  .passthrough()
  .superRefine((s, ctx) => {
    for (const key of ['min_pixels', 'max_pixels'])
      if (key in s)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message:
            'dynamic-resolution processors (Qwen2-VL style) are not supported; expected shortest_edge or height/width',
        });
    if (s.shortest_edge === undefined && (s.height === undefined || s.width === undefined))
      ctx.addIssue({ code: 'custom', message: 'expected {shortest_edge} or {height, width}' });
  });

const triple = z.array(z.number()).length(3, 'expected 3 numbers (one per RGB channel)');

const PreprocessorSchema = z
  .object({
    image_processor_type: z.string().optional(),
    do_resize: z.boolean().optional(),
    size: z.union([z.int().min(1), sizeDict]).optional(),
    resample: z
      .union([z.literal(0), z.literal(1), z.literal(2), z.literal(3), z.literal(4), z.literal(5)])
      .default(2),
    do_center_crop: z.boolean().optional(),
    crop_size: z
      .union([z.int().min(1), z.object({ height: z.int().min(1), width: z.int().min(1) })])
      .optional(),
    do_rescale: z.boolean().default(true),
    rescale_factor: z
      .number()
      .positive()
      .default(1 / 255),
    do_normalize: z.boolean().optional(),
    image_mean: z.union([triple, z.number()]).optional(),
    image_std: z.union([triple, z.number()]).optional(),
    do_convert_rgb: z.boolean().optional(),
    /** Not in most processor files (it lives in the model config); accepted here for patchify. */
    patch_size: z.int().min(1).optional(),
  })
  .passthrough();

export interface PreprocessConfig {
  resize?: { shortestEdge: number; longestEdge?: number } | { height: number; width: number };
  resample: ResampleCode;
  crop?: { height: number; width: number };
  rescale?: number;
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
  patchSize?: number;
}

/** Processors whose integer `size` means the shortest edge (transformers' default_to_square=False). */
const SHORTEST_EDGE_INT = [
  'CLIPImageProcessor',
  'ChineseCLIPImageProcessor',
  'BitImageProcessor',
  'OwlViTImageProcessor',
];

/** Validates a parsed preprocessor_config.json; errors name `file` and the field. */
export function parsePreprocessorConfig(json: unknown, file = 'preprocessor_config.json'): PreprocessConfig {
  const parsed = PreprocessorSchema.safeParse(json);
  if (!parsed.success) throw zodIssuesError(file, [], parsed.error);
  const c = parsed.data;
  const out: PreprocessConfig = { resample: c.resample as ResampleCode };
  if ((c.do_resize ?? c.size !== undefined) && c.size === undefined)
    throw new TlabError(`${file}: size: missing while do_resize is true`);
  if ((c.do_resize ?? true) && c.size !== undefined) {
    if (typeof c.size === 'number')
      out.resize = SHORTEST_EDGE_INT.includes(c.image_processor_type ?? '')
        ? { shortestEdge: c.size }
        : { height: c.size, width: c.size };
    else if (c.size.height !== undefined && c.size.width !== undefined)
      out.resize = { height: c.size.height, width: c.size.width };
    else out.resize = { shortestEdge: c.size.shortest_edge as number, longestEdge: c.size.longest_edge };
  }
  if (c.do_center_crop ?? c.crop_size !== undefined) {
    if (c.crop_size === undefined)
      throw new TlabError(`${file}: crop_size: missing while do_center_crop is true`);
    out.crop = typeof c.crop_size === 'number' ? { height: c.crop_size, width: c.crop_size } : c.crop_size;
  }
  if (c.do_rescale) out.rescale = c.rescale_factor;
  if (c.do_normalize ?? c.image_mean !== undefined) {
    if (c.image_mean === undefined || c.image_std === undefined)
      throw new TlabError(`${file}: image_mean/image_std: missing while do_normalize is true`);
    const three = (v: number | number[]): [number, number, number] =>
      typeof v === 'number' ? [v, v, v] : [v[0], v[1], v[2]];
    out.normalize = { mean: three(c.image_mean), std: three(c.image_std) };
    if (out.normalize.std.some((s) => s === 0)) throw new TlabError(`${file}: image_std: must not contain 0`);
  }
  if (c.patch_size !== undefined) out.patchSize = c.patch_size;
  return out;
}

export function loadPreprocessorConfig(path: string): PreprocessConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TlabError(`${path}: cannot read preprocessor config: ${(error as Error).message}`);
  }
  return parsePreprocessorConfig(json, basename(path));
}

/** transformers' get_resize_output_image_size: the short side becomes `shortest`, the long one scales (truncated). */
export function resizeTarget(
  width: number,
  height: number,
  resize: NonNullable<PreprocessConfig['resize']>,
): [number, number] {
  if ('height' in resize) return [resize.width, resize.height];
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  let newShort = resize.shortestEdge;
  let newLong = Math.trunc((newShort * long) / short);
  if (resize.longestEdge !== undefined && newLong > resize.longestEdge) {
    newShort = Math.trunc((resize.longestEdge * newShort) / newLong);
    newLong = resize.longestEdge;
  }
  return width <= height ? [newShort, newLong] : [newLong, newShort];
}

/** Centre crop with transformers' offsets ((size - crop) // 2); pads with zeros where the image is smaller. */
export function centerCrop(image: RawImage, height: number, width: number): RawImage {
  const { data, channels } = image;
  const out = new Uint8Array(width * height * channels);
  const top = Math.floor((image.height - height) / 2);
  const left = Math.floor((image.width - width) / 2);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= image.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= image.width) continue;
      for (let c = 0; c < channels; c++)
        out[(y * width + x) * channels + c] = data[(sy * image.width + sx) * channels + c];
    }
  }
  return { data: out, width, height, channels };
}

/** A float32 image, channels first: data[c * height * width + y * width + x]. */
export interface ChwTensor {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Resize, crop, rescale and normalize 8-bit RGB pixels into a CHW float32 tensor. */
export function preprocessRgb(image: RawImage, config: PreprocessConfig): ChwTensor {
  if (image.channels !== 3)
    throw new TlabError(`preprocess: expected RGB (3 channels), got ${image.channels}`);
  let img = image;
  if (config.resize) {
    const [w, h] = resizeTarget(img.width, img.height, config.resize);
    img = resizeImage(img, w, h, config.resample);
  }
  if (config.crop) img = centerCrop(img, config.crop.height, config.crop.width);
  const { width, height } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const scale = config.rescale ?? 1;
  const mean = config.normalize?.mean.map(Math.fround) ?? [0, 0, 0];
  const std = config.normalize?.std.map(Math.fround) ?? [1, 1, 1];
  for (let i = 0; i < plane; i++)
    for (let c = 0; c < 3; c++) {
      const v = Math.fround(img.data[i * 3 + c] * scale);
      out[c * plane + i] = config.normalize ? Math.fround(Math.fround(v - mean[c]) / std[c]) : v;
    }
  return { data: out, channels: 3, height, width };
}

/** Decodes image bytes (any format sharp reads, converted to RGB) and preprocesses them. */
export async function preprocessImageBytes(bytes: Uint8Array, config: PreprocessConfig): Promise<ChwTensor> {
  return preprocessRgb(await decodeRgb(bytes), config);
}

/**
 * Non-overlapping P x P patches in row-major patch order, each flattened as (channel, row, column), i.e.
 * [num_patches, C * P * P]: the layout a ViT patch embedding (a Conv2d with stride P) multiplies.
 */
export function patchify(
  tensor: ChwTensor,
  patch: number,
): { data: Float32Array; numPatches: number; patchDim: number } {
  const { data, channels, height, width } = tensor;
  if (height % patch !== 0 || width % patch !== 0)
    throw new TlabError(`patchify: image ${width}x${height} is not divisible into ${patch}x${patch} patches`);
  const ph = height / patch;
  const pw = width / patch;
  const patchDim = channels * patch * patch;
  const out = new Float32Array(ph * pw * patchDim);
  for (let py = 0; py < ph; py++)
    for (let px = 0; px < pw; px++) {
      const base = (py * pw + px) * patchDim;
      for (let c = 0; c < channels; c++)
        for (let y = 0; y < patch; y++) {
          const src = c * height * width + (py * patch + y) * width + px * patch;
          out.set(data.subarray(src, src + patch), base + c * patch * patch + y * patch);
        }
    }
  return { data: out, numPatches: ph * pw, patchDim };
}
