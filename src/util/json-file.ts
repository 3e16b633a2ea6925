import { existsSync, readFileSync, statSync } from 'node:fs';
import { TlabError } from './errors.ts';

/** A parsed JSON object (not an array, not null). */
export type JsonObject = { [key: string]: unknown };

/**
 * Reads and parses a JSON file. A missing file or a syntax error becomes a TlabError naming the file and the
 * line and column of the first error (V8's own message omits the position for some errors).
 */
export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) throw new TlabError(`${path}: file not found`);
  if (statSync(path).isDirectory()) throw new TlabError(`${path}: is a folder, expected a JSON file`);
  return parseJsonText(readFileSync(path, 'utf8'), path);
}

/** Parses JSON text that came from `source` (a file name used in errors). */
export function parseJsonText(text: string, source: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (error) {
    const offset = firstJsonErrorOffset(body);
    const { line, column } = lineAndColumn(body, offset);
    const reason = (error as Error).message
      .replace(/, ".*" is not valid JSON$/s, '')
      .replace(/ (in JSON )?at position \d+.*$/s, '');
    throw new TlabError(`${source}: not valid JSON at line ${line}, column ${column}: ${reason}`);
  }
}

/** Reads a JSON file that must hold an object, naming the file when it holds something else. */
export function readJsonObject(path: string): JsonObject {
  const value = readJsonFile(path);
  if (!isJsonObject(value)) {
    throw new TlabError(`${path}: expected a JSON object at the top level, found ${describeJson(value)}`);
  }
  return value;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short name of a JSON value's kind for error messages ("an array", "the string \"x\"", ...). */
export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Offset of the first character at which `text` stops being valid JSON: a small recursive-descent scanner
 * run only after JSON.parse failed, so it need not be fast.
 */
export function firstJsonErrorOffset(text: string): number {
  let i = 0;
  class Stop extends Error {}
  const fail = (): never => {
    throw new Stop();
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const string = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      const code = text.charCodeAt(i);
      if (code < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          for (let k = 0; k < 4; k++) {
            i++;
            if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail();
          }
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const number = () => {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!match || match[0] === '' || match[0] === '-') fail();
    i += match![0].length;
  };
  const object = () => {
    i++;
    ws();
    if (text[i] === '}') {
      i++;
      return;
    }
    for (;;) {
      ws();
      string();
      ws();
      if (text[i] !== ':') fail();
      i++;
      value();
      ws();
      if (text[i] === '}') break;
      if (text[i] !== ',') fail();
      i++;
    }
    i++;
  };
  const array = () => {
    i++;
    ws();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (;;) {
      value();
      ws();
      if (text[i] === ']') break;
      if (text[i] !== ',') fail();
      i++;
    }
    i++;
  };
  const value = (): void => {
    ws();
    const start = text[i];
    if (start === '{') object();
    else if (start === '[') array();
    else if (start === '"') string();
    else if (start === 't') literal('true');
    else if (start === 'f') literal('false');
    else if (start === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
  }
  return Math.min(i, text.length);
}
