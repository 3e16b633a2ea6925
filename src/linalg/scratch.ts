/**
 * Pooled float64 scratch buffers for the N×D temporaries of the estimators (centred features, within-class
 * residuals). A fresh 30 MB array costs ~15 ms of page faults on first touch here, more than the pass that fills
 * it; reusing the memory of the previous call avoids that. A buffer is lent to one caller at a time, and at most
 * two idle ones are kept.
 */
const idle: Float64Array[] = [];

/** Runs `fn` with a buffer of exactly `length` elements (contents left from earlier use). */
export async function withScratch<T>(length: number, fn: (buf: Float64Array) => Promise<T> | T): Promise<T> {
  let pick = -1; // the smallest idle buffer that is big enough
  for (let i = 0; i < idle.length; i++)
    if (idle[i].length >= length && (pick < 0 || idle[i].length < idle[pick].length)) pick = i;
  const buf = pick >= 0 ? idle.splice(pick, 1)[0] : new Float64Array(length);
  try {
    return await fn(buf.subarray(0, length));
  } finally {
    idle.push(buf);
    if (idle.length > 2) {
      idle.sort((a, b) => b.length - a.length);
      idle.length = 2; // keep the two largest
    }
  }
}
