/**
 * The WebAssembly SIMD kernels of wasm/kernels.wat: compiled once per process from the text through wabt, then
 * lent out as pooled instances, each with a memory of its own (a blocked factorisation awaits onnxruntime between
 * panels, so two of them may interleave). The level-2 loops of the tridiagonalisation run ~3× faster there than as JS
 * (f64x2 arithmetic, no bounds checks). With TLAB_LINALG_WASM=0 callers use their JS loops; when the kernels
 * cannot be compiled (no WebAssembly SIMD, no wabt) they fall back to them too, after one warning naming the cause.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { linalgWasmSetting } from '../util/env.ts';

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
  /** acc[g[i]] += x[i] over rows of n×m x (i32 g); sums[i] and mins[i] of each row. */
  rows_into_groups(x: number, n: number, m: number, g: number, acc: number, sums: number, mins: number): void;
  /** out[i] = x[i] · w[g[i]] over rows of n×m x (i32 g). */
  rows_dot_groups(x: number, n: number, m: number, g: number, w: number, out: number): void;
}

let enabledSetting: boolean | undefined; // TLAB_LINALG_WASM, read on first use
let compiled: Promise<WasmModule | null> | undefined;
let warned = false;
const kernelsFile = new URL('./wasm/kernels.wat', import.meta.url);
let kernelSource: () => string = () => readFileSync(kernelsFile, 'utf8');

function enabled(): boolean {
  enabledSetting ??= linalgWasmSetting();
  return enabledSetting;
}

/** Turns the WebAssembly kernels on or off (tests compare both paths); returns the previous setting. */
export function setWasmEnabled(on: boolean): boolean {
  const prev = enabled();
  enabledSetting = on;
  return prev;
}

/**
 * Compiles `text` instead of kernels.wat from now on (null: kernels.wat again) and forgets the compiled module
 * and idle instances; tests give broken text to see the fall-back and its warning.
 */
export function setKernelSource(text: string | null): void {
  kernelSource = text === null ? () => readFileSync(kernelsFile, 'utf8') : () => text;
  compiled = undefined;
  warned = false;
  idle.length = 0;
}

/** One process warning per compiled module that failed, naming the cause; the JS loops serve from then on. */
function warnFallback(cause: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `linalg: the WebAssembly kernels could not be compiled (${cause}); using the slower JS loops (set TLAB_LINALG_WASM=0 to choose them without this warning)`,
    { code: 'TLAB_WASM_FALLBACK' },
  );
}

async function compile(): Promise<WasmModule | null> {
  if (!wasmApi) {
    warnFallback('this JavaScript engine has no WebAssembly');
    return null;
  }
  try {
    const { default: wabtInit } = await import('wabt');
    const wabt = await wabtInit();
    const text = kernelSource();
    const parsed = wabt.parseWat('kernels.wat', text, { simd: true, bulk_memory: true });
    // Compile straight to optimised code: with V8's default dynamic tiering a kernel starts in the baseline
    // compiler (Liftoff), whose SIMD code is ~3× slower, and is only optimised after it has run hot for a while,
    // i.e. after the first large call. The flag is read when a module is compiled, so it is restored right after
    // and no other module is affected.
    setFlagsFromString('--no-wasm-dynamic-tiering');
    try {
      return new wasmApi.Module(parsed.toBinary({}).buffer);
    } finally {
      setFlagsFromString('--wasm-dynamic-tiering');
      parsed.destroy();
    }
  } catch (error) {
    // no wabt, no SIMD, broken text: wabt puts the parser's diagnostics on the lines after 'parseWat failed:'
    const cause = ((error as Error).message ?? String(error)).replace(/\s+/g, ' ').trim();
    warnFallback(cause.length > 300 ? `${cause.slice(0, 300)}...` : cause);
    return null;
  }
}

/** A fresh instance whose memory holds at least `bytes`, or null when the kernels are off or unavailable. */
export async function wasmKernels(bytes: number): Promise<Kernels | null> {
  if (!enabled()) return null;
  compiled ??= compile();
  const mod = await compiled;
  if (!mod || !wasmApi) return null;
  const k = new wasmApi.Instance(mod, {}).exports as unknown as Kernels;
  grow(k, bytes);
  return k;
}

function grow(k: Kernels, bytes: number): void {
  const pages = Math.ceil(bytes / 65536) - k.memory.buffer.byteLength / 65536;
  if (pages > 0) k.memory.grow(pages);
}

/**
 * Instances whose memory is reused from call to call: fresh memory costs a page fault per 4 KiB on first touch
 * (~5 ms for the 10 MB a D=768 tridiagonalisation needs). An instance is lent to one caller at a time, so
 * interleaved async callers never share memory.
 */
const idle: Kernels[] = [];

/** Runs `fn` with a pooled instance of at least `bytes` (null when the kernels are off or unavailable). */
export async function withKernels<T>(bytes: number, fn: (k: Kernels | null) => Promise<T> | T): Promise<T> {
  if (!enabled()) return fn(null);
  const size = (i: number) => idle[i].memory.buffer.byteLength;
  let pick = -1; // the smallest idle instance that is big enough, else the biggest (grown)
  for (let i = 0; i < idle.length; i++) {
    const fits = size(i) >= bytes;
    const pickFits = pick >= 0 && size(pick) >= bytes;
    if (
      pick < 0 ||
      (fits && (!pickFits || size(i) < size(pick))) ||
      (!fits && !pickFits && size(i) > size(pick))
    )
      pick = i;
  }
  let k: Kernels | null;
  if (pick >= 0) {
    k = idle.splice(pick, 1)[0];
    grow(k, bytes);
  } else k = await wasmKernels(bytes);
  try {
    return await fn(k);
  } finally {
    if (k && idle.length < 2) idle.push(k);
  }
}
