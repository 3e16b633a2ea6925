/**
 * Image inputs for inference: a vision tower's processor (the model folder's preprocessor_config.json, else the
 * ViT-style default a model trained from scratch here uses) and a cache of preprocessed pixels by file, so an
 * image shared by many prompts (or models) is decoded once.
 */
import { readFileSync } from 'node:fs';
import {
  loadPreprocessorConfig,
  type PreprocessConfig,
  preprocessImageBytes,
} from '../data/images/preprocess.ts';
import type { VisionEncoder } from '../models/types.ts';
import { TlabError } from '../util/errors.ts';

/** Resize to the encoder's size with bicubic filtering, scale to [-1, 1]: the processor of towers trained here. */
export function defaultVisionPreprocessor(encoder: VisionEncoder): PreprocessConfig {
  const size = encoder.imageSize;
  return {
    resize: { height: size, width: size },
    resample: 3,
    rescale: 1 / 255,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  };
}

/** The folder's processor when it has preprocessor_config.json, else the default for the encoder. */
export function visionPreprocessorFor(
  preprocessorConfig: string | null,
  encoder: VisionEncoder,
): PreprocessConfig {
  return preprocessorConfig ? loadPreprocessorConfig(preprocessorConfig) : defaultVisionPreprocessor(encoder);
}

/** Preprocessed pixels [C, H, W] of image files (or bytes) for one vision tower, cached by key. */
export class ImagePixels {
  private readonly cache = new Map<string, Promise<Float32Array>>();

  constructor(
    readonly encoder: VisionEncoder,
    readonly processor: PreprocessConfig,
    /** Most images kept; the oldest are dropped first. */
    readonly capacity = 4096,
  ) {}

  /** Pixels of an image file. */
  file(path: string): Promise<Float32Array> {
    return this.cached(`file:${path}`, () => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(path);
      } catch (error) {
        throw new TlabError(`${path}: cannot read image (${(error as NodeJS.ErrnoException).code ?? error})`);
      }
      return this.preprocess(bytes, path);
    });
  }

  /** Pixels of encoded image bytes; `key` identifies them in the cache (e.g. a content hash), `where` names them in errors. */
  bytes(bytes: Uint8Array, key: string, where: string): Promise<Float32Array> {
    return this.cached(`bytes:${key}`, () => this.preprocess(bytes, where));
  }

  private cached(key: string, load: () => Promise<Float32Array>): Promise<Float32Array> {
    let hit = this.cache.get(key);
    if (hit) {
      // Refresh its place: the map's insertion order is the eviction order.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    hit = load();
    this.cache.set(key, hit);
    hit.catch(() => this.cache.delete(key));
    while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
    return hit;
  }

  private async preprocess(bytes: Uint8Array, where: string): Promise<Float32Array> {
    const { numChannels: c, imageSize: size } = this.encoder;
    let t: Awaited<ReturnType<typeof preprocessImageBytes>>;
    try {
      t = await preprocessImageBytes(bytes, this.processor);
    } catch (error) {
      if (error instanceof TlabError) throw new TlabError(`${where}: ${error.message}`, error.details);
      throw new TlabError(`${where}: cannot decode the image (${(error as Error).message.split('\n')[0]})`);
    }
    if (t.channels !== c || t.height !== size || t.width !== size)
      throw new TlabError(
        `${where}: preprocessed to ${t.channels}x${t.height}x${t.width}, the vision tower takes ${c}x${size}x${size}`,
        "check the model folder's preprocessor_config.json (size, crop_size)",
      );
    return t.data;
  }
}
