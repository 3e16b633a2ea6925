/**
 * The few Python built-ins whose exact behaviour the reference graders (lm-eval-harness, SQuAD, VLMEvalKit,
 * llama-cookbook) depend on: str.split()/strip() whitespace, string.punctuation, float() parsing, round(x, n),
 * `re` patterns, and \b over Unicode word characters. Ported so scores match those tools to the last digit.
 */
import { TlabError } from '../../util/errors.ts';

/** Characters for which Python's str.isspace() is true (JS's \s differs: it has U+FEFF, lacks U+001C–1F, U+0085). */
export const PY_SPACE_CLASS =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE_CLASS}]+`, 'g');
const PY_LEADING_SPACE = new RegExp(`^[${PY_SPACE_CLASS}]+`);
const PY_TRAILING_SPACE = new RegExp(`[${PY_SPACE_CLASS}]+$`);

/** Python's `s.split()`: split on runs of whitespace, no empty pieces. */
export function pySplit(s: string): string[] {
  return s.split(PY_SPACE_RUN).filter((t) => t.length > 0);
}

/** Python's `s.strip()`. */
export function pyStrip(s: string): string {
  return s.replace(PY_LEADING_SPACE, '').replace(PY_TRAILING_SPACE, '');
}

/** Python's `' '.join(s.split())`: trim and collapse whitespace runs to one space. */
export function collapseWhitespace(s: string): string {
  return pySplit(s).join(' ');
}

/** Python's `string.punctuation`: the ASCII punctuation characters. */
export const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const PUNCTUATION_SET = new Set(ASCII_PUNCTUATION);

/** Removes every character of `string.punctuation`. */
export function removePunctuation(s: string): string {
  let out = '';
  for (const ch of s) if (!PUNCTUATION_SET.has(ch)) out += ch;
  return out;
}

/** Python's casefold() for comparisons: upper then lower also folds ß → ss and similar expansions. */
export function casefold(s: string): string {
  return s.toUpperCase().toLowerCase();
}

/** Python's `len(s)`: code points, not UTF-16 units. */
export function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n += 1;
  return n;
}

/**
 * Python's `\b(a|an|the)\b` with Unicode word characters (letters, digits, underscore), replaced by a space as
 * SQuAD's normalize_answer does. JS's own \b only knows ASCII word characters.
 */
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;
const ARTICLES_ANY_CASE = new RegExp(ARTICLES.source, 'giu');
export function replaceArticles(s: string, replacement = ' ', anyCase = false): string {
  return s.replace(anyCase ? ARTICLES_ANY_CASE : ARTICLES, replacement);
}

const PY_FLOAT =
  /^[+-]?(?:(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?|inf|infinity|nan)$/i;

/** Python's `float(text)`, or null where it raises ValueError. */
export function pyFloat(text: string): number | null {
  const t = pyStrip(text);
  if (!PY_FLOAT.test(t)) return null;
  const body = t.replace(/_/g, '').toLowerCase();
  const sign = body.startsWith('-') ? -1 : 1;
  const unsigned = body.replace(/^[+-]/, '');
  if (unsigned === 'inf' || unsigned === 'infinity') return sign * Number.POSITIVE_INFINITY;
  if (unsigned === 'nan') return Number.NaN;
  return Number(body);
}

/**
 * Python's `round(x, digits)`: the decimal nearest to the exact binary value, ties to even. Number.toFixed is
 * exact too but breaks ties away from zero, so exact ties are found first: a double is a tie when its exact
 * decimal expansion ends in 5 right after the kept digits. A double that is not a tie differs from one by at
 * least 2^-67·5^-digits when |x| ≥ 0.5·10^-digits, which shows within 30 further digits of toFixed's expansion.
 */
export function pyRound(x: number, digits: number): number {
  if (!Number.isFinite(x) || Math.abs(x) >= 1e21) return x;
  const expansion = Math.abs(x).toFixed(Math.min(100, digits + 30));
  const point = expansion.indexOf('.');
  const tail = expansion.slice(point + 1 + digits);
  if (/^50*$/.test(tail)) {
    const kept = expansion.slice(0, point + 1 + digits);
    const last = Number(kept[kept.length - 1] === '.' ? kept[kept.length - 2] : kept[kept.length - 1]);
    const down = Number(kept);
    const value = last % 2 === 0 ? down : down + 10 ** -digits;
    return Math.sign(x) * Number(value.toFixed(digits));
  }
  return Number(x.toFixed(digits));
}

/**
 * A Python `re` pattern as a JS RegExp: named groups `(?P<n>…)`/`(?P=n)`, \A and \Z, and leading inline flags
 * (?i)(?m)(?s). The 'u' flag is not used, because Python accepts escapes such as `\-` and `\,` that it forbids.
 */
export function pyRegex(pattern: string, flags: string, context: string): RegExp {
  let body = pattern;
  let jsFlags = flags;
  const inline = /^\(\?([aiLmsux]+)\)/.exec(body);
  if (inline) {
    if (inline[1].includes('x'))
      throw new TlabError(`${context}: verbose regular expressions ((?x)) are not supported: ${pattern}`);
    for (const f of inline[1]) if ('ims'.includes(f) && !jsFlags.includes(f)) jsFlags += f;
    body = body.slice(inline[0].length);
  }
  body = body
    .replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>')
    .replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, '\\k<$1>')
    .replace(/(^|[^\\])\\A/g, '$1^')
    .replace(/(^|[^\\])\\Z/g, '$1$');
  try {
    return new RegExp(body, jsFlags);
  } catch (error) {
    throw new TlabError(`${context}: not a valid regular expression: ${(error as Error).message}`);
  }
}

/**
 * Python's `re.findall(pattern, text)`: whole matches when the pattern has no groups, the group's text with
 * one group, a tuple (array) of every group's text with several; groups that did not take part are ''.
 */
export function pyFindall(regex: RegExp, text: string): (string | string[])[] {
  const global = regex.global ? regex : new RegExp(regex.source, `${regex.flags}g`);
  const out: (string | string[])[] = [];
  for (const m of text.matchAll(global)) {
    const groups = m.length - 1;
    if (groups === 0) out.push(m[0]);
    else if (groups === 1) out.push(m[1] ?? '');
    else out.push(m.slice(1).map((g) => g ?? ''));
  }
  return out;
}
