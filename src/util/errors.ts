/**
 * User-facing errors. The first line of `message` says what is wrong and where (file, field, tensor); `details`
 * (printed after it) may list what would be valid. The CLI prints these without a stack trace.
 */
export class TlabError extends Error {
  readonly details: string | undefined;

  constructor(message: string, details?: string) {
    super(message);
    this.name = 'TlabError';
    this.details = details;
  }
}

/** Formats a list of valid choices for an error message, shortening long lists. */
export function validChoices(values: Iterable<string>, max = 20): string {
  const all = [...values];
  const shown = all.slice(0, max).join(', ');
  return all.length > max ? `${shown}, ... (${all.length} in all)` : shown;
}
