/**
 * Errors of zod-validated config files, one behaviour for every parser: the first line is
 * `file: a.b.c: what is wrong`, and an unknown key says which known key it is probably a typo of
 * (`model.config: unknown field 'n_layr' (did you mean 'n_layer'?)`) with the valid keys in the details.
 *
 * The suggestion needs the object schema that rejected the key, which zod hands only to error maps, so this
 * module installs one process-wide error map for unknown keys when it is loaded (it is imported by every module
 * that formats config errors, so it is in place before their first parse). Other issues keep zod's messages.
 */
import { z } from 'zod';
import { didYouMean } from './did-you-mean.ts';
import { TlabError } from './errors.ts';

/** Keys of the object schema `inst` (a zod object's shape), or [] when it is not one. */
function shapeKeys(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def
    ?.shape;
  return shape ? Object.keys(shape) : [];
}

/** "unknown field 'x' (did you mean 'y'?)" and, on the next line, the valid fields. */
export function unknownKeysMessage(keys: readonly string[], known: readonly string[]): string {
  const first = keys.map((k) => `'${k}'${didYouMean(k, known)}`).join(', ');
  const line = `unknown field${keys.length > 1 ? 's' : ''} ${first}`;
  return known.length ? `${line}\nvalid fields: ${known.join(', ')}` : line;
}

z.config({
  customError: (iss) =>
    iss.code === 'unrecognized_keys' ? unknownKeysMessage(iss.keys, shapeKeys(iss.inst)) : undefined,
});

/** Formats zod issues as `file: a.b.c: message`, unknown keys first, then zod's order (the CLI prints the first line). */
export function zodIssuesError(file: string, prefix: (string | number)[], error: z.ZodError): TlabError {
  const details: string[] = [];
  // An unknown key first: a typo (`featurs`) is also why a required field (`features`) is missing.
  const issues = [...error.issues].sort(
    (a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'),
  );
  const lines = issues.map((issue, i) => {
    const path = [...prefix, ...issue.path.map(String)].join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys' && !message.startsWith('unknown field'))
      message = unknownKeysMessage(issue.keys, []);
    if (/received undefined$/.test(message)) message = 'missing (required)';
    const [head, ...rest] = message.split('\n');
    if (i === 0) details.push(...rest);
    return `${file}: ${path || '(top level)'}: ${head}`;
  });
  return new TlabError(lines[0], [...lines.slice(1), ...details].join('\n') || undefined);
}
