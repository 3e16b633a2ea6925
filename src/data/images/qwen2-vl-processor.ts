/**
 * Qwen2-VL's image processor (Hugging Face Qwen2VLImageProcessor): smart_resize picks the size nearest the image's
 * whose sides are multiples of patch_size·merge_size and whose area lies in [min_pixels, max_pixels]; the image is
 * resized to it (Pillow bicubic), rescaled and normalized (CLIP mean/std) as preprocess.ts does, repeated over the
 * temporal patch (a still image is a two-frame clip) and cut into patches flattened to [t·h·w, C·T·P·P] in merge-
 * window order, with the grid (t, h, w). A batch's patches are concatenated (VlmImageInputs.feeds), never stacked.
 * `loadImageProcessor` reads either this or a fixed-resolution preprocessor_config.json.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import type { PatchImage, VlmImage } from '../../models/types.ts';
import { TlabError } from '../../util/errors.ts';
import { zodIssuesError } from '../../util/zod-errors.ts';
import { decodeRgb, type RawImage } from './codec.ts';
import {
  type ChwTensor,
  type PreprocessConfig,
  parsePreprocessorConfig,
  preprocessRgb,
} from './preprocess.ts';
import type { ResampleCode } from './resample.ts';

export interface Qwen2VlProcessorConfig {
  minPixels: number;
  maxPixels: number;
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  resample: ResampleCode;
  rescale?: number;
  normalize?: { mean: [number, number, number]; std: [number, number, number] };
}

/** The processor's defaults (those of the released Qwen2-VL checkpoints, except max_pixels: theirs is 12845056). */
export const QWEN2_VL_PROCESSOR_DEFAULTS: Qwen2VlProcessorConfig = {
  minPixels: 56 * 56,
  maxPixels: 28 * 28 * 1280,
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  resample: 3,
  rescale: 1 / 255,
  normalize: {
    mean: [0.48145466, 0.4578275, 0.40821073],
    std: [0.26862954, 0.26130258, 0.27577711],
  },
};

const PROCESSOR_TYPES = ['Qwen2VLImageProcessor', 'Qwen2VLImageProcessorFast', 'Qwen2_5_VLImageProcessor'];
const triple = z.array(z.number()).length(3, 'expected 3 numbers (one per RGB channel)');
const pixels = z.int().min(1);

const Schema = z.looseObject({
  image_processor_type: z.string().optional(),
  min_pixels: pixels.optional(),
  max_pixels: pixels.optional(),
  // transformers ≥ 4.5x writes the limits as size {shortest_edge: min_pixels, longest_edge: max_pixels}.
  size: z
    .looseObject({
      min_pixels: pixels.optional(),
      max_pixels: pixels.optional(),
      shortest_edge: pixels.optional(),
      longest_edge: pixels.optional(),
    })
    .optional(),
  patch_size: z.int().min(1).default(14),
  temporal_patch_size: z.int().min(1).default(2),
  merge_size: z.int().min(1).default(2),
  resample: z
    .union([z.literal(0), z.literal(1), z.literal(2), z.literal(3), z.literal(4), z.literal(5)])
    .default(3),
  do_resize: z.literal(true, { error: 'Qwen2-VL images must be resized to the patch grid' }).optional(),
  do_rescale: z.boolean().default(true),
  rescale_factor: z
    .number()
    .positive()
    .default(1 / 255),
  do_normalize: z.boolean().default(true),
  image_mean: triple.optional(),
  image_std: triple.optional(),
});

/** Whether a parsed preprocessor_config.json is a Qwen2-VL processor's (its type, or pixel limits instead of a size). */
export function isQwen2VlProcessorJson(json: unknown): boolean {
  if (typeof json !== 'object' || json === null) return false;
  const j = json as Record<string, unknown>;
  const size = j.size as Record<string, unknown> | undefined;
  return (
    PROCESSOR_TYPES.includes(String(j.image_processor_type)) ||
    'min_pixels' in j ||
    'max_pixels' in j ||
    (typeof size === 'object' && size !== null && ('min_pixels' in size || 'max_pixels' in size))
  );
}

export function parseQwen2VlProcessorConfig(
  json: unknown,
  file = 'preprocessor_config.json',
): Qwen2VlProcessorConfig {
  const parsed = Schema.safeParse(json);
  if (!parsed.success) throw zodIssuesError(file, [], parsed.error);
  const c = parsed.data;
  const d = QWEN2_VL_PROCESSOR_DEFAULTS;
  const minPixels = c.min_pixels ?? c.size?.min_pixels ?? c.size?.shortest_edge ?? d.minPixels;
  const maxPixels = c.max_pixels ?? c.size?.max_pixels ?? c.size?.longest_edge ?? d.maxPixels;
  if (minPixels > maxPixels)
    throw new TlabError(`${file}: min_pixels: ${minPixels} is larger than max_pixels ${maxPixels}`);
  const factor = c.patch_size * c.merge_size;
  if (maxPixels < factor * factor)
    throw new TlabError(
      `${file}: max_pixels: ${maxPixels} is below one merged patch (patch_size x merge_size = ${factor}, ${factor * factor} pixels)`,
    );
  const out: Qwen2VlProcessorConfig = {
    minPixels,
    maxPixels,
    patchSize: c.patch_size,
    temporalPatchSize: c.temporal_patch_size,
    mergeSize: c.merge_size,
    resample: c.resample as ResampleCode,
  };
  if (c.do_rescale) out.rescale = c.rescale_factor;
  if (c.do_normalize) {
    const mean = c.image_mean ?? d.normalize!.mean;
    const std = c.image_std ?? d.normalize!.std;
    if (std.some((s) => s === 0)) throw new TlabError(`${file}: image_std: must not contain 0`);
    out.normalize = { mean: [mean[0], mean[1], mean[2]], std: [std[0], std[1], std[2]] };
  }
  return out;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * HF smart_resize: [height, width] with both multiples of `factor`, area within [minPixels, maxPixels] and the
 * aspect ratio kept as closely as possible. A TlabError (naming `where`) for an aspect ratio over 200, or when
 * no such size exists (a long thin image whose shorter side already needs one factor-wide row over max_pixels).
 */
export function smartResize(
  height: number,
  width: number,
  factor: number,
  minPixels: number,
  maxPixels: number,
  where = 'image',
): [number, number] {
  if (!(height > 0 && width > 0))
    throw new TlabError(`${where}: image size ${width}x${height} must be positive`);
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > 200)
    throw new TlabError(
      `${where}: image ${width}x${height} has aspect ratio ${ratio.toFixed(1)}; Qwen2-VL's processor takes at most 200`,
    );
  let h = roundHalfEven(height / factor) * factor;
  let w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  if (h * w > maxPixels)
    throw new TlabError(
      `${where}: image ${width}x${height} is larger than max_pixels ${maxPixels} allows: the nearest size on the ${factor}-pixel grid, ${w}x${h}, has ${w * h} pixels`,
      'raise max_pixels in preprocessor_config.json, or crop the image to a less elongated shape',
    );
  if (h < factor || w < factor)
    throw new TlabError(
      `${where}: image ${width}x${height} resizes to ${w}x${h}, less than one ${factor}x${factor} merged patch (raise min_pixels)`,
    );
  return [h, w];
}

/** Patches [t·h·w, C·T·P·P] of a CHW image (already resized to the grid), repeated over the temporal patch. */
export function flattenPatches(image: ChwTensor, config: Qwen2VlProcessorConfig): PatchImage {
  const { data, channels: c, height, width } = image;
  const { patchSize: p, temporalPatchSize: tp, mergeSize: m } = config;
  if (height % (p * m) !== 0 || width % (p * m) !== 0)
    throw new TlabError(
      `Qwen2-VL patches: image ${width}x${height} is not a multiple of ${p * m} on each side`,
    );
  const gh = height / p;
  const gw = width / p;
  const dim = c * tp * p * p;
  const out = new Float32Array(gh * gw * dim);
  let k = 0;
  // (grid_t, T, C, gh/m, m, P, gw/m, m, P) permuted to (grid_t, gh/m, gw/m, m, m, C, T, P, P), as HF reshapes.
  for (let bh = 0; bh < gh / m; bh++)
    for (let bw = 0; bw < gw / m; bw++)
      for (let i = 0; i < m; i++)
        for (let j = 0; j < m; j++, k++) {
          const row0 = (bh * m + i) * p;
          const col0 = (bw * m + j) * p;
          for (let ch = 0; ch < c; ch++)
            for (let y = 0; y < p; y++) {
              const src = ch * height * width + (row0 + y) * width + col0;
              const line = data.subarray(src, src + p);
              // Every temporal slot holds the same still frame.
              for (let t = 0; t < tp; t++) out.set(line, k * dim + ((ch * tp + t) * p + y) * p);
            }
        }
  return { patches: out, grid: [1, gh, gw] };
}

/** Resize (smart_resize), rescale, normalize and patch an RGB image; `where` names it in errors. */
export function qwen2VlPatchesOf(
  image: RawImage,
  config: Qwen2VlProcessorConfig,
  where = 'image',
): PatchImage {
  const factor = config.patchSize * config.mergeSize;
  const [h, w] = smartResize(image.height, image.width, factor, config.minPixels, config.maxPixels, where);
  const chw = preprocessRgb(image, {
    resize: { height: h, width: w },
    resample: config.resample,
    rescale: config.rescale,
    normalize: config.normalize,
  });
  return flattenPatches(chw, config);
}

/** A model folder's image processor: fixed-resolution (ViT, CLIP, ...) or Qwen2-VL's. */
export type ImageProcessor =
  | { kind: 'fixed'; config: PreprocessConfig }
  | { kind: 'qwen2-vl'; config: Qwen2VlProcessorConfig };

/** Parses preprocessor_config.json of either kind. */
export function parseImageProcessor(json: unknown, file = 'preprocessor_config.json'): ImageProcessor {
  return isQwen2VlProcessorJson(json)
    ? { kind: 'qwen2-vl', config: parseQwen2VlProcessorConfig(json, file) }
    : { kind: 'fixed', config: parsePreprocessorConfig(json, file) };
}

export function loadImageProcessor(path: string): ImageProcessor {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TlabError(`${path}: cannot read preprocessor config: ${(error as Error).message}`);
  }
  return parseImageProcessor(json, basename(path));
}

/** Decodes image bytes and prepares them for a VLM: pixels [C, H, W], or Qwen2-VL patches with their grid. */
export async function prepareVlmImage(
  bytes: Uint8Array,
  processor: ImageProcessor,
  where = 'image',
): Promise<VlmImage> {
  const rgb = await decodeRgb(bytes);
  if (processor.kind === 'qwen2-vl') return qwen2VlPatchesOf(rgb, processor.config, where);
  return preprocessRgb(rgb, processor.config).data;
}

/** The preprocessor_config.json fields of a Qwen2-VL processor (what a saved model folder carries). */
export function qwen2VlProcessorJson(c: Qwen2VlProcessorConfig): Record<string, unknown> {
  return {
    image_processor_type: 'Qwen2VLImageProcessor',
    processor_class: 'Qwen2VLProcessor',
    min_pixels: c.minPixels,
    max_pixels: c.maxPixels,
    patch_size: c.patchSize,
    temporal_patch_size: c.temporalPatchSize,
    merge_size: c.mergeSize,
    resample: c.resample,
    do_rescale: c.rescale !== undefined,
    rescale_factor: c.rescale ?? 1 / 255,
    do_normalize: Boolean(c.normalize),
    image_mean: c.normalize?.mean ?? QWEN2_VL_PROCESSOR_DEFAULTS.normalize!.mean,
    image_std: c.normalize?.std ?? QWEN2_VL_PROCESSOR_DEFAULTS.normalize!.std,
    do_convert_rgb: true,
  };
}
