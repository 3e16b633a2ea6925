/**
 * Prompt templates: `{column}` inserts that field of the row and `{{column}}` writes `{column}` literally.
 * Any other brace is left alone, so prompts can embed JSON schemas (`{"type": "object"}`) unescaped.
 */
import { canonicalJson } from '../canonical-json.ts';

const FIELD = /\{\{([A-Za-z_][\w-]*)\}\}|\{([A-Za-z_][\w-]*)\}/g;

/** Column names a template refers to, in order of first use. */
export function templateFields(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(FIELD)) if (m[2] !== undefined && !names.includes(m[2])) names.push(m[2]);
  return names;
}

export function renderTemplate(template: string, row: Record<string, unknown>): string {
  return template.replace(FIELD, (_, literal: string | undefined, name: string | undefined) =>
    literal !== undefined ? `{${literal}}` : valueToText(row[name as string]),
  );
}

/** A cell as prompt or answer text: strings as they are, structures as JSON, nothing for null. */
export function valueToText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value instanceof Uint8Array) throw new TypeError('binary data cannot be used as text');
  if (value instanceof Date) return value.toISOString();
  return canonicalJson(value);
}
