/**
 * `tlab data generators --describe`: every generator parameter with its type, default and valid values, read
 * from the generator's zod schema (through its JSON Schema), so the listing cannot drift from what is accepted.
 */
import { z } from 'zod';
import { TlabError, validChoices } from '../../util/errors.ts';
import { GENERATORS } from './index.ts';
import type { AnyGenerator } from './types.ts';

export interface ParamDescription {
  name: string;
  type: string;
  /** JSON of the default, or null when the parameter is optional without one. */
  default: unknown;
  /** Allowed values or range, in words ('' when any value of the type is). */
  valid: string;
  /** What the parameter means, where the schema says (its zod description), else ''. */
  doc: string;
}

export interface GeneratorDescription {
  name: string;
  version: number;
  description: string;
  params: ParamDescription[];
  notes: string[];
}

/** What a task's `splits` counts, where it is not one row per item. */
const NOTES: Record<string, string[]> = {
  'grid-world': [
    'splits counts grids, not questions: in multi-question mode (questions_per_image > 1) each grid gives questions_per_image rows, so a split of N grids has N x questions_per_image rows (instructions: multi asks them all in one row, N rows)',
  ],
};

type JsonSchema = {
  type?: string;
  enum?: unknown[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
};

const SAFE_MAX = Number.MAX_SAFE_INTEGER;

function typeOf(s: JsonSchema): string {
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object' && typeof s.additionalProperties === 'object')
    return `map of name → ${typeOf(s.additionalProperties)}`;
  return s.type ?? 'value';
}

function range(s: JsonSchema): string {
  const lo = s.minimum;
  const hi = s.maximum !== undefined && s.maximum < SAFE_MAX ? s.maximum : undefined;
  if (lo !== undefined && hi !== undefined) return `${lo}..${hi}`;
  if (lo !== undefined) return `>= ${lo}`;
  if (hi !== undefined) return `<= ${hi}`;
  return '';
}

function validOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map(String).join(' | ');
  if (s.type === 'array') {
    const item = s.items ? validOf(s.items) : '';
    const size = s.minItems !== undefined ? `at least ${s.minItems}` : '';
    return [size, item && `each ${item}`].filter(Boolean).join(', ');
  }
  if (s.type === 'object' && typeof s.additionalProperties === 'object') {
    const v = validOf(s.additionalProperties);
    return v ? `values ${v}` : '';
  }
  if (s.type === 'string' && s.minLength) return 'non-empty';
  return range(s);
}

export function describeGenerator(g: AnyGenerator): GeneratorDescription {
  const schema = z.toJSONSchema(g.params, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const params = Object.entries(schema.properties ?? {}).map(([name, s]) => ({
    name,
    type: typeOf(s),
    default: s.default ?? null,
    valid: validOf(s),
    doc: s.description ?? '',
  }));
  return {
    name: `synthetic:${g.name}`,
    version: g.version,
    description: g.description,
    params,
    notes: NOTES[g.name] ?? [],
  };
}

/** One generator by name (with or without `synthetic:`); an unknown name lists the valid ones. */
export function generatorByName(name: string): AnyGenerator {
  const g = GENERATORS[name.replace(/^synthetic:/, '')];
  if (!g)
    throw new TlabError(
      `--describe: unknown generator '${name}'`,
      `valid generators: ${validChoices(Object.keys(GENERATORS))}`,
    );
  return g;
}

/** The text listing: one block per generator, one line per parameter. */
export function formatGeneratorDescription(d: GeneratorDescription): string {
  const width = Math.max(...d.params.map((p) => p.name.length));
  const lines = [`${d.name} (version ${d.version}): ${d.description}`];
  for (const p of d.params) {
    const def = p.default === null ? 'no default' : `default ${JSON.stringify(p.default)}`;
    const valid = p.valid ? `; valid: ${p.valid}` : '';
    lines.push(`  ${p.name.padEnd(width)}  ${p.type}; ${def}${valid}${p.doc ? ` — ${p.doc}` : ''}`);
  }
  for (const n of d.notes) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}
