/**
 * JSON with object keys sorted at every level, so the same value always serialises to the same bytes
 * (manifests, content hashes). BigInts become numbers when safe, strings otherwise; byte arrays are refused
 * because they never belong in a manifest or a hash key (hash them first).
 */
export function canonicalJson(value: unknown, indent?: number): string {
  return JSON.stringify(sortKeys(value), null, indent);
}

function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint')
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    return value;
  }
  if (ArrayBuffer.isView(value)) throw new TypeError('canonicalJson: byte arrays are not serialisable');
  if (Array.isArray(value)) return value.map(sortKeys);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}
