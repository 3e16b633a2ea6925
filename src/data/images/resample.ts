/**
 * Image resizing that reproduces Pillow's `Image.resize` on 8-bit RGB (what Hugging Face image processors
 * call): separable convolution, horizontal pass then vertical, filter support widened by the scale when
 * shrinking (antialiasing), fixed-point coefficients with 22 fractional bits and 8-bit rounding between the
 * passes. Nearest neighbour samples the source pixel under each output pixel centre, as Pillow does.
 */
import type { RawImage } from './codec.ts';

/** Pillow's resampling filter codes (the `resample` field of preprocessor_config.json). */
export const RESAMPLE = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 } as const;
export type ResampleCode = (typeof RESAMPLE)[keyof typeof RESAMPLE];

interface Filter {
  support: number;
  f(x: number): number;
}

const sinc = (x: number): number => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));

const FILTERS: Record<Exclude<ResampleCode, 0>, Filter> = {
  1: { support: 3, f: (x) => (x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  2: { support: 1, f: (x) => (x < 0 ? (x > -1 ? 1 + x : 0) : x < 1 ? 1 - x : 0) },
  3: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      const ax = Math.abs(x);
      if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
      if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
      return 0;
    },
  },
  4: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  5: { support: 1, f: (x) => (x > -1 && x < 1 ? sinc(x) * (0.54 + 0.46 * Math.cos(Math.PI * x)) : 0) },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coefficients {
  bounds: Int32Array; // [xmin, count] per output pixel
  weights: Int32Array; // fixed point, ksize per output pixel
  ksize: number;
}

function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      // Pillow rounds half away from zero when converting to fixed point.
      weights[xx * ksize + x] = Math.trunc(
        w < 0 ? w * (1 << PRECISION_BITS) - 0.5 : w * (1 << PRECISION_BITS) + 0.5,
      );
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

const clip8 = (v: number): number => Math.max(0, Math.min(v, 255));

/** out = sum(in * w) in fixed point, rounded, shifted back and clipped (Pillow's 8-bit path). */
function convolve(
  src: Uint8Array,
  dst: Uint8Array,
  lines: number,
  inStride: number,
  outLen: number,
  step: number,
  lineStride: number,
  c: Coefficients,
  channels: number,
  horizontal: boolean,
): void {
  const half = 1 << (PRECISION_BITS - 1);
  const shift = 2 ** PRECISION_BITS;
  for (let line = 0; line < lines; line++)
    for (let o = 0; o < outLen; o++) {
      const xmin = c.bounds[o * 2];
      const count = c.bounds[o * 2 + 1];
      const base = o * c.ksize;
      for (let ch = 0; ch < channels; ch++) {
        // Sums fit in 2^53: 255 * 2^22 * ksize stays far below.
        let sum = half;
        for (let x = 0; x < count; x++) {
          const at = horizontal
            ? line * inStride + (xmin + x) * step + ch
            : (xmin + x) * inStride + line * step + ch;
          sum += src[at] * c.weights[base + x];
        }
        const out = horizontal ? line * lineStride + o * step + ch : o * lineStride + line * step + ch;
        dst[out] = clip8(Math.floor(sum / shift));
      }
    }
}

/** Resizes interleaved 8-bit pixels to width x height with a Pillow filter. */
export function resizeImage(
  image: RawImage,
  width: number,
  height: number,
  resample: ResampleCode,
): RawImage {
  const { data, width: w, height: h, channels } = image;
  if (width === w && height === h) return { data: data.slice(), width, height, channels };
  if (resample === 0) {
    const out = new Uint8Array(width * height * channels);
    for (let y = 0; y < height; y++) {
      const sy = Math.min(h - 1, Math.floor((y + 0.5) * (h / height)));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(w - 1, Math.floor((x + 0.5) * (w / width)));
        for (let ch = 0; ch < channels; ch++)
          out[(y * width + x) * channels + ch] = data[(sy * w + sx) * channels + ch];
      }
    }
    return { data: out, width, height, channels };
  }
  const filter = FILTERS[resample];
  let current = data;
  let cw = w;
  if (width !== w) {
    const next = new Uint8Array(width * h * channels);
    convolve(
      current,
      next,
      h,
      w * channels,
      width,
      channels,
      width * channels,
      coefficients(w, width, filter),
      channels,
      true,
    );
    current = next;
    cw = width;
  }
  if (height !== h) {
    const next = new Uint8Array(cw * height * channels);
    convolve(
      current,
      next,
      cw,
      cw * channels,
      height,
      channels,
      cw * channels,
      coefficients(h, height, filter),
      channels,
      false,
    );
    current = next;
  }
  return { data: current, width, height, channels };
}
