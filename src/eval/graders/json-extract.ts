/**
 * Finding the JSON in a model's answer, without repairing it: the whole answer if it is JSON; else the last
 * ```json fenced block; else the last fenced block of any kind; else the first balanced {...} or [...] in the
 * prose that parses. What is found must parse as it stands, or the answer is `invalid_json`.
 */

export type JsonSource = 'whole' | 'fence_json' | 'fence' | 'prose';

export type JsonExtraction =
  | { ok: true; value: unknown; source: JsonSource }
  | { ok: false; source: JsonSource | 'none'; error: string };

const FENCE = /```([A-Za-z0-9_+-]*)[^\S\n]*\n?([\s\S]*?)```/g;

/** Deeper values are refused: the graders walk JSON recursively. */
export const MAX_JSON_DEPTH = 256;

/** The nesting depth of a parsed JSON value (0 for a scalar), found without recursion. */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, d + 1);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
  if (jsonDepth(value) > MAX_JSON_DEPTH)
    return { ok: false, error: `nested deeper than ${MAX_JSON_DEPTH} levels` };
  return { ok: true, value };
}

/** The end (exclusive) of the bracketed value starting at `start`, or -1 if it never closes. */
export function balancedEnd(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') stack.push(c === '{' ? '}' : ']');
    else if (c === '}' || c === ']') {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * `expect` names the kind of value the reference is, so prose such as "see [1] below: {...}" yields the object;
 * without it, the first balanced object or array is taken.
 */
export function extractJson(answer: string, expect?: 'object' | 'array'): JsonExtraction {
  const whole = answer.trim();
  if (whole.length > 0) {
    const parsed = tryParse(whole);
    if (parsed.ok) return { ok: true, value: parsed.value, source: 'whole' };
  }
  const fences = [...answer.matchAll(FENCE)].map((m) => ({
    lang: m[1].toLowerCase(),
    body: m[2],
    end: (m.index ?? 0) + m[0].length,
  }));
  // A last fence left open: generation stopped at a "```" stop string, or ran out of tokens. Its body is the
  // rest of the answer; it must still parse.
  const afterClosed = fences.at(-1)?.end ?? 0;
  const open = /```([A-Za-z0-9_+-]*)[^\S\n]*\n?([\s\S]*)$/.exec(answer.slice(afterClosed));
  if (open) fences.push({ lang: open[1].toLowerCase(), body: open[2], end: answer.length });
  const jsonFence = fences.filter((f) => f.lang === 'json').at(-1);
  const fence = jsonFence ?? fences.at(-1);
  if (fence) {
    const source: JsonSource = jsonFence ? 'fence_json' : 'fence';
    const parsed = tryParse(fence.body.trim());
    return parsed.ok ? { ok: true, value: parsed.value, source } : { ok: false, source, error: parsed.error };
  }
  const opens = expect === 'object' ? '{' : expect === 'array' ? '[' : '{[';
  let firstError = '';
  for (let i = 0; i < answer.length; i++) {
    const c = answer[i];
    if (!opens.includes(c)) continue;
    const end = balancedEnd(answer, i);
    // A value that never closes (a truncated answer) holds everything after it: nothing later can be the answer.
    if (end < 0) {
      return {
        ok: false,
        source: 'prose',
        error: `the ${c === '{' ? 'object' : 'array'} at character ${i} is not closed`,
      };
    }
    const parsed = tryParse(answer.slice(i, end));
    if (parsed.ok) return { ok: true, value: parsed.value, source: 'prose' };
    firstError ||= parsed.error;
    i = end - 1; // not inside a broken value either
  }
  return {
    ok: false,
    source: firstError ? 'prose' : 'none',
    error: firstError || 'no JSON found in the answer',
  };
}
