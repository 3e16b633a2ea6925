/**
 * The llama-cookbook transferability tool's JSON score (its JSONGrader, branch transfer_experiment), reproduced
 * so results can be compared with that tool: the ground truth parsed (and `gt_parse` unwrapped), the last
 * ```json block of the answer, Python json_repair, jsondiff.diff(pred, gt) counted by count_differences,
 * score = max(0, (total − diffs) / total) rounded to 4 places, 1 on no diff, −1 when a side does not parse.
 *
 * Where the original raises (free text that repairs to '', a ground truth of no fields, a diff that is a
 * string), it aborts the whole (model, task) cell; here that row scores −1 and its details say what the
 * original raised, so it counts in cookbook_error_rate instead.
 *
 * json_repair itself is approximated: its top-level scan is ported (text before the first { or [ skipped, # and
 * // and /* comments skipped, several values become a list, a repeat of the same shape replaces the previous
 * one) and each value is repaired by the jsonrepair package, which fixes the same faults (missing quotes,
 * brackets and commas, single quotes, Python literals, trailing commas, comments, truncation).
 */
import { JSONRepairError, jsonrepair } from 'jsonrepair';
import { countDifferences, countTotalFields, isJsonObject, jsondiff, pyEqual, pyTruthy } from './jsondiff.ts';
import { PY_SPACE_CLASS, pyRound, pyStrip } from './python-compat.ts';

/** A Python exception the original code would raise, by type. */
export class PyError extends Error {
  constructor(
    readonly pyType: string,
    message: string,
  ) {
    super(`${pyType}: ${message}`);
  }
}

export interface CookbookRowScore {
  /** In [0, 1], or −1 when parsing failed (the original's value) or the original raised. */
  score: number;
  nb_different_fields: number;
  total_fields: number;
  /** What failed: the original's error for a parse failure, or the exception it would have raised. */
  error?: string;
  /** True where the original raises and aborts its whole cell. */
  raised?: boolean;
}

/** The end (exclusive) of the value opening at `start`; the end of the text if it never closes. */
function valueEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--; // a mismatched closer still closes the innermost value, as the repair will
      if (depth === 0) return i + 1;
    }
  }
  return text.length;
}

/**
 * json_repair reads a bare Python `None` as the string "None" (it knows true/false/null only), where jsonrepair
 * would make it null: quote it first. Quoted text (either quote) is left alone.
 */
function quoteBareNone(text: string): string {
  let out = '';
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
      out += c;
    } else if (text.startsWith('None', i) && !/\w/.test(text[i - 1] ?? '') && !/\w/.test(text[i + 4] ?? '')) {
      out += '"None"';
      i += 3;
    } else out += c;
  }
  return out;
}

function repairValue(raw: string): unknown {
  const slice = quoteBareNone(raw);
  try {
    return JSON.parse(jsonrepair(slice));
  } catch (error) {
    // Text after a complete value (a note, a second value glued on): repair only the value.
    if (error instanceof JSONRepairError && error.position > 0) {
      try {
        return JSON.parse(jsonrepair(slice.slice(0, error.position)));
      } catch {}
    }
    return '';
  }
}

/** json_repair's ObjectComparer.is_same_object: same types and the same keys and lengths, recursively. */
function sameShape(a: unknown, b: unknown): boolean {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'list' : typeof v);
  if (kind(a) !== kind(b)) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameShape(x, b[i]));
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a);
    return (
      ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && sameShape(a[k], b[k]))
    );
  }
  return true;
}

/** json_repair.repair_json followed by json.loads: the value, or '' where repair_json returns ''. */
export function repairJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {}
  let i = 0;
  const next = (): unknown => {
    while (i < text.length) {
      const c = text[i];
      if (c === '{' || c === '[') {
        const end = valueEnd(text, i);
        const value = repairValue(text.slice(i, end));
        i = end;
        return value;
      }
      if (c === '#' || (c === '/' && text[i + 1] === '/')) {
        while (i < text.length && text[i] !== '\n' && text[i] !== '\r') i++;
      } else if (c === '/' && text[i + 1] === '*') {
        const close = text.indexOf('*/', i + 1);
        i = close < 0 ? text.length : close + 2;
      } else i++;
    }
    return '';
  };
  const found: unknown[] = [];
  while (i < text.length) {
    const value = next();
    if (value === '') continue;
    if (found.length > 0 && sameShape(found[found.length - 1], value)) found.pop();
    found.push(value);
  }
  return found.length === 0 ? '' : found.length === 1 ? found[0] : found;
}

/** JSONUtils.load_json_from_str: non-strings pass through; strings are repaired, and '' is a ValueError. */
export function loadJsonFromStr(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const parsed = repairJson(value);
  if (parsed === '') throw new PyError('ValueError', 'Failed to load valid JSON from string: ');
  return parsed;
}

const BLOCK_CLOSE = new RegExp(`}[${PY_SPACE_CLASS}]+\`\`\``);

/** JSONUtils.extract_json_blocks: each ```json block, ended by a `}` followed by whitespace and ``` . */
export function extractJsonBlocks(content: string): string[] {
  const blocks: string[] = [];
  let ptr = 0;
  while (ptr < content.length) {
    let start = content.indexOf('```json', ptr);
    if (start === -1) break;
    start += '```json'.length;
    const m = BLOCK_CLOSE.exec(content.slice(start));
    const end = m ? start + m.index + 1 : content.length;
    blocks.push(pyStrip(content.slice(start, end)));
    ptr = end + 1;
  }
  return blocks;
}

/** JSONUtils.extract_json_from_response. */
export function extractJsonFromResponse(content: string): unknown {
  try {
    let text = content;
    if (text.includes('```json')) {
      const blocks = extractJsonBlocks(text);
      if (blocks.length === 0) throw new PyError('ValueError', 'No JSON blocks found in response');
      text = blocks[blocks.length - 1];
    }
    return loadJsonFromStr(text);
  } catch (error) {
    throw new PyError('ValueError', `Failed to extract JSON from response: ${(error as Error).message}`);
  }
}

const pyTypeName = (v: unknown) =>
  v === null
    ? 'NoneType'
    : typeof v === 'number'
      ? Number.isInteger(v)
        ? 'int'
        : 'float'
      : typeof v === 'boolean'
        ? 'bool'
        : 'str';

/** Python's `key in container`. */
function pyContains(container: unknown, key: string): boolean {
  if (typeof container === 'string') return container.includes(key);
  if (Array.isArray(container)) return container.some((v) => pyEqual(v, key));
  if (isJsonObject(container)) return Object.hasOwn(container, key);
  throw new PyError('TypeError', `argument of type '${pyTypeName(container)}' is not iterable`);
}

function pyGetItem(container: unknown, key: string): unknown {
  if (isJsonObject(container)) return container[key];
  throw new PyError(
    'TypeError',
    Array.isArray(container)
      ? 'list indices must be integers or slices, not str'
      : 'string indices must be integers',
  );
}

/** calculate_json_accuracy(actual, predicted). */
export function calculateJsonAccuracy(actual: unknown, predicted: unknown): CookbookRowScore {
  let gt: unknown;
  let pred: unknown;
  try {
    gt = loadJsonFromStr(actual);
    pred = loadJsonFromStr(predicted);
  } catch (error) {
    return { score: -1, nb_different_fields: -1, total_fields: -1, error: (error as Error).message };
  }
  const diff = jsondiff(pred, gt);
  const total = countTotalFields(gt);
  if (!pyTruthy(diff)) return { score: 1, nb_different_fields: 0, total_fields: total };
  // count_number_of_differences first passes the diff through load_json_from_str (a string diff is repaired).
  const changes = countDifferences(loadJsonFromStr(diff));
  if (total === 0) throw new PyError('ZeroDivisionError', 'division by zero');
  return {
    score: pyRound(Math.max(0, (total - changes) / total), 4),
    nb_different_fields: changes,
    total_fields: total,
  };
}

/** JSONGrader.grade_row: the row's score, with what the original would raise caught and reported. */
export function cookbookScore(expected: unknown, rawResponse: string): CookbookRowScore {
  try {
    let gt = loadJsonFromStr(expected);
    if (pyContains(gt, 'gt_parse')) gt = pyGetItem(gt, 'gt_parse');
    const response = extractJsonFromResponse(rawResponse);
    return calculateJsonAccuracy(gt, response);
  } catch (error) {
    // Python's exceptions as the original raises them; a RangeError is a value nested too deep to walk.
    const message = error instanceof PyError ? error.message : `RecursionError: ${(error as Error).message}`;
    if (!(error instanceof PyError) && !(error instanceof RangeError)) throw error;
    return { score: -1, nb_different_fields: -1, total_fields: -1, error: message, raised: true };
  }
}

/** JSONGrader.calculate_aggregate_metrics: the mean score (−1s included, as pandas computes it) and the share
 * of −1 rows. */
export function cookbookAggregate(scores: readonly number[]): { accuracy: number; error_rate: number } {
  if (scores.length === 0) return { accuracy: 0, error_rate: 1 };
  const sum = scores.reduce((s, v) => s + v, 0);
  return { accuracy: sum / scores.length, error_rate: scores.filter((s) => s === -1).length / scores.length };
}
