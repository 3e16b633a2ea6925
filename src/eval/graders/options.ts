/**
 * Grader options: each grader declares its options (name, type, default, description); values from a task
 * config or from `--option k=v` (text) are checked and converted here, so a typo or a wrong type is an error
 * that names the grader, the option and what would be valid.
 */
import { didYouMean } from '../../util/did-you-mean.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { describeJson } from '../../util/json-file.ts';
import type { OptionSpec } from './types.ts';

/** Validated option values, read by name with the declared type. */
export class GraderOptions {
  constructor(private readonly values: ReadonlyMap<string, unknown>) {}

  bool(name: string): boolean {
    return this.get(name) as boolean;
  }

  num(name: string): number {
    return this.get(name) as number;
  }

  str(name: string): string {
    return this.get(name) as string;
  }

  strs(name: string): string[] {
    return this.get(name) as string[];
  }

  /** Every option with its value (defaults included), for details and logs. */
  toRecord(): Record<string, unknown> {
    return Object.fromEntries(this.values);
  }

  private get(name: string): unknown {
    if (!this.values.has(name)) throw new Error(`grader option '${name}' was not declared`);
    return this.values.get(name);
  }
}

/**
 * Checks `raw` against `specs` and fills in defaults. `context` starts each error message (e.g.
 * "task.yaml: grader_options: grader 'regex'").
 */
export function validateOptions(
  specs: readonly OptionSpec[],
  raw: Record<string, unknown> | undefined,
  context: string,
): GraderOptions {
  const names = specs.map((s) => s.name);
  const values = new Map<string, unknown>();
  for (const key of Object.keys(raw ?? {})) {
    if (!names.includes(key)) {
      throw new TlabError(
        `${context}: unknown option '${key}'${didYouMean(key, names)}`,
        names.length ? `options: ${validChoices(names)}` : 'this grader takes no options',
      );
    }
  }
  for (const spec of specs) {
    const given = raw?.[spec.name];
    values.set(spec.name, given === undefined ? spec.default : convert(spec, given, context));
  }
  return new GraderOptions(values);
}

function convert(spec: OptionSpec, value: unknown, context: string): unknown {
  const fail = (expected: string): never => {
    throw new TlabError(
      `${context}: option '${spec.name}': expected ${expected}, found ${describeJson(value)}`,
    );
  };
  switch (spec.type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      return fail('true or false');
    case 'number':
    case 'integer': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      const kind = spec.type === 'integer' ? 'an integer' : 'a number';
      if (typeof n !== 'number' || !Number.isFinite(n)) return fail(kind);
      if (spec.type === 'integer' && !Number.isInteger(n)) return fail(kind);
      if (spec.min !== undefined && n < spec.min) return fail(`${kind} >= ${spec.min}`);
      return n;
    }
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number') return String(value);
      return fail('a string');
    case 'string[]':
      if (typeof value === 'string') return [value];
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return [...value];
      return fail('a string or a list of strings');
    case 'enum': {
      const choices = spec.choices ?? [];
      if (typeof value === 'string' && choices.includes(value)) return value;
      const shown =
        typeof value === 'string' ? `'${value}'${didYouMean(value, choices)}` : describeJson(value);
      throw new TlabError(
        `${context}: option '${spec.name}': ${shown} is not one of ${validChoices(choices.map((c) => `'${c}'`))}`,
      );
    }
  }
}
