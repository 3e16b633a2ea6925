/**
 * Seeded pseudo-random numbers for everything that must be reproducible (data splits, sampling, synthetic
 * data, initialisation). xoshiro128** (32-bit state words, fast in JS) seeded through splitmix32, so any
 * integer or string seed gives a well-mixed state. Not for cryptography.
 *
 *   const rng = new Rng(42);            // or new Rng('task1/train')
 *   rng.next();                         // float in [0, 1)
 *   rng.int(10);                        // integer in [0, 10)
 *   rng.shuffle(array);                 // in place
 *   const child = rng.fork('images');   // independent stream, derived from the seed and a label
 *   const r = Rng.at(seed, 'test', 17); // the stream for item 17 of split 'test': random access by index
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** The 32-bit seed this generator was built from (after hashing a string or mixing parts). */
  readonly seed: number;

  constructor(seed: number | string = 0) {
    this.seed = typeof seed === 'string' ? hashString(seed) : seed >>> 0;
    let x = this.seed;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      return mix32(x);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator for one item of a collection, derived from a seed and a path of labels or indices. */
  static at(seed: number | string, ...path: (number | string)[]): Rng {
    return new Rng(hashSeed(seed, ...path));
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32)
      throw new RangeError(`Rng.int: n must be in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const v = this.nextUint32();
      if (v < limit) return v % n;
    }
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: empty array');
    return items[this.int(items.length)];
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** k distinct integers from [0, n), in random order (Floyd's algorithm: O(k) memory, not O(n)). */
  sampleIndices(n: number, k: number): number[] {
    if (k > n) throw new RangeError(`Rng.sampleIndices: cannot draw ${k} distinct values from ${n}`);
    if (k * 2 > n) return this.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, k);
    const chosen = new Set<number>();
    const order: number[] = [];
    for (let j = n - k; j < n; j++) {
      const t = this.int(j + 1);
      const v = chosen.has(t) ? j : t;
      chosen.add(v);
      order.push(v);
    }
    return this.shuffle(order);
  }

  /** Standard normal deviate (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** An independent generator derived from this one's seed and a label; does not advance this one. */
  fork(label: number | string): Rng {
    return new Rng(hashSeed(this.seed, label));
  }
}

/** Combines a seed and a path of labels/indices into one 32-bit seed (order-sensitive, stable across runs). */
export function hashSeed(seed: number | string, ...path: (number | string)[]): number {
  let h = typeof seed === 'string' ? hashString(seed) : mix32(seed >>> 0);
  for (const part of path) {
    const p = typeof part === 'string' ? hashString(part) : mix32((part >>> 0) ^ Math.floor(part / 2 ** 32));
    h = mix32((h ^ p) + 0x7f4a7c15);
  }
  return h >>> 0;
}

/** 32-bit hash of a string (FNV-1a over UTF-16 code units, then a splitmix finaliser). */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
