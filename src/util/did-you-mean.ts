/**
 * "Did you mean ...?" suggestions for unknown names (commands, config keys, choices): the candidates within a
 * small edit distance of what was typed, case-insensitively, nearest first.
 */
import { distance } from 'fastest-levenshtein';

/** Candidates close enough to `word` to be a typo of it, nearest first (at most `max`). */
export function closestMatches(word: string, candidates: Iterable<string>, max = 3): string[] {
  const w = word.toLowerCase();
  const scored: { name: string; d: number }[] = [];
  for (const name of new Set(candidates)) {
    const d = distance(w, name.toLowerCase());
    // About one edit per three characters: `n_layr` → `n_layer`, `biuld` → `build`, but not `lr` → `eps`.
    const limit = Math.max(1, Math.ceil(Math.max(w.length, name.length) / 3));
    if (d <= limit) scored.push({ name, d });
  }
  return scored
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, max)
    .map((s) => s.name);
}

/** " (did you mean 'x'?)" or " (did you mean 'x' or 'y'?)", or '' when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const close = closestMatches(word, candidates, 2);
  return close.length ? ` (did you mean ${close.map((c) => `'${c}'`).join(' or ')}?)` : '';
}
