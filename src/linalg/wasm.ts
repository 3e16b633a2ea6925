/**
 * The WebAssembly SIMD kernels of wasm/kernels.wat: compiled once per process from the text through wabt, then
 * instantiated per call with a memory of its own (a blocked factorisation awaits onnxruntime between panels, so
 * two of them may interleave). The level-2 loops of the tridiagonalisation run ~3× faster there than as JS
 * (f64x2 arithmetic, no bounds checks). When WebAssembly SIMD or wabt is unavailable, or TLAB_LINALG_WASM=0,
 * callers fall back to their JS loops.
 */
import { readFileSync } from 'node:fs';

// The project's lib settings carry no WebAssembly declarations (they live in lib.dom): the little used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

export interface Kernels {
  memory: WasmMemory;
  /** y = S v for S = T[o:, o:] of row-major m×m T, lower triangle read (byte pointers). */
  symv_lower(t: number, m: number, o: number, v: number, y: number): void;
  dot(x: number, y: number, n: number): number;
  /** y −= a1·x1 + a2·x2. */
  axpy2(y: number, x1: number, a1: number, x2: number, a2: number, n: number): void;
  /**
   * Givens rotations (row index idx[r] (i32), cosine c[r], sine s[r]) on rows i, i+1 of row-major n×m x: in
   * order when dir = 1, transposed in reverse order when dir = −1.
   */
  rotate_rows(x: number, m: number, idx: number, c: number, s: number, count: number, dir: number): void;
  /** Householder reflectors (rows of v, f64 tau) on row-major n×m y: H_0 first when dir = 1 (Qᵀ y), else last. */
  reflect_rows(y: number, m: number, v: number, n: number, tau: number, w: number, dir: number): void;
}

let enabled = process.env.TLAB_LINALG_WASM !== '0';
let compiled: Promise<WasmModule | null> | undefined;

/** Turns the WebAssembly kernels on or off (tests compare both paths); returns the previous setting. */
export function setWasmEnabled(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}

async function compile(): Promise<WasmModule | null> {
  if (!wasmApi) return null;
  try {
    const { default: wabtInit } = await import('wabt');
    const wabt = await wabtInit();
    const text = readFileSync(new URL('./wasm/kernels.wat', import.meta.url), 'utf8');
    const parsed = wabt.parseWat('kernels.wat', text, { simd: true, bulk_memory: true });
    try {
      return new wasmApi.Module(parsed.toBinary({}).buffer);
    } finally {
      parsed.destroy();
    }
  } catch {
    return null; // no wabt or no SIMD: the JS loops serve
  }
}

/** A fresh instance whose memory holds at least `bytes`, or null when the kernels are off or unavailable. */
export async function wasmKernels(bytes: number): Promise<Kernels | null> {
  if (!enabled) return null;
  compiled ??= compile();
  const mod = await compiled;
  if (!mod || !wasmApi) return null;
  const k = new wasmApi.Instance(mod, {}).exports as unknown as Kernels;
  const pages = Math.ceil(bytes / 65536) - k.memory.buffer.byteLength / 65536;
  if (pages > 0) k.memory.grow(pages);
  return k;
}
