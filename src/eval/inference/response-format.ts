/**
 * Whether generated text honours a requested response_format: `json_object` wants the whole answer (surrounding
 * whitespace aside) to be one JSON object, `json_schema` also wants it valid against the schema (checked with
 * Ajv). Servers with constrained decoding (vLLM) always pass; unconstrained models are reported, not repaired.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { TlabError } from '../../util/errors.ts';
import type { ResponseFormat } from './types.ts';

export interface FormatCheck {
  /** The text is what the format asks for. */
  valid: boolean;
  /** Why not (the JSON parse error, or the first schema violation); null when valid. */
  error: string | null;
}

// One validator per schema text; the eval grid sends the same schema for every row of a task.
const ajv = new Ajv({ strict: false, allErrors: false });
const compiled = new Map<string, ValidateFunction>();

/** Compiles a JSON schema once (a TlabError naming `where` when it is not a valid schema). */
export function schemaValidator(schema: Record<string, unknown>, where: string): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (!validate) {
    try {
      validate = ajv.compile(schema);
    } catch (error) {
      throw new TlabError(`${where}: not a valid JSON schema: ${(error as Error).message}`);
    }
    if (compiled.size > 256) compiled.clear();
    compiled.set(key, validate);
  }
  return validate;
}

/** Checks `text` against `format`; null for plain text (nothing to check). */
export function checkResponseFormat(text: string, format: ResponseFormat | undefined): FormatCheck | null {
  if (!format || format.type === 'text') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { valid: false, error: `not JSON: ${(error as Error).message}` };
  }
  if (format.type === 'json_object') {
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    return isObject
      ? { valid: true, error: null }
      : {
          valid: false,
          error: `expected a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`,
        };
  }
  const validate = schemaValidator(format.schema, `response_format.json_schema (${format.name})`);
  if (validate(value)) return { valid: true, error: null };
  const first = validate.errors?.[0];
  const at = first?.instancePath ? first.instancePath : '(root)';
  return {
    valid: false,
    error: `does not match schema '${format.name}': ${at} ${first?.message ?? 'is invalid'}`,
  };
}
