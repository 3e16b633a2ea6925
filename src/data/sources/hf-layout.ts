/**
 * Finds the data files of a Hugging Face dataset folder (a cloned repo, a hub-cache snapshot, or any folder
 * of shards) and groups them into splits the way `datasets` does: the dataset card's `configs:` section when
 * present, otherwise split keywords in file and folder names (`data/train-00000-of-00002.parquet`,
 * `default/validation/0000.parquet`, `test.jsonl`); files that name no split all belong to `train`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import YAML from 'yaml';
import { TlabError, validChoices } from '../../util/errors.ts';
import { TABLE_EXTENSIONS } from './tabular-source.ts';

const SPLIT_KEYWORDS: [string, string[]][] = [
  ['train', ['train', 'training']],
  ['validation', ['validation', 'valid', 'val', 'dev']],
  ['test', ['test', 'testing', 'eval', 'evaluation']],
];

/** A task folder this tool built (its JSONL must not be read back as source data). */
function isBuiltTask(dir: string): boolean {
  const manifest = join(dir, 'manifest.json');
  return existsSync(manifest) && readFileSync(manifest, 'utf8').includes('"transferlab-task/');
}

/**
 * Every file under `dir` (relative, '/'-separated, sorted), skipping hidden folders like `.git` and `.cache`
 * and task folders built here (a dataset folder may hold its own formatted_datasets).
 */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (!isBuiltTask(path)) walk(path);
      } else if (entry.isFile() || entry.isSymbolicLink()) out.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** Glob as in dataset cards: `*` within a path segment, `**` across segments, `?` one character. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

interface CardConfig {
  config_name?: string;
  default?: boolean;
  data_files?: unknown;
}

function readCardConfigs(text: string | undefined): CardConfig[] | undefined {
  if (text === undefined) return undefined;
  const match = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text);
  if (!match) return undefined;
  try {
    const front = YAML.parse(match[1]) as { configs?: CardConfig[] } | null;
    return Array.isArray(front?.configs) && front.configs.length > 0 ? front.configs : undefined;
  } catch {
    return undefined;
  }
}

/** Which split a file belongs to, from keywords between delimiters in its name or folders. */
export function splitOfPath(path: string): string | undefined {
  const tokens = path
    .toLowerCase()
    .replace(/\.[a-z0-9]+$/, '')
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  // The file name decides before its folders (`train/extra-test.csv` is test, as in `datasets`).
  for (let t = tokens.length - 1; t >= 0; t--)
    for (const [split, words] of SPLIT_KEYWORDS) if (words.includes(tokens[t])) return split;
  return undefined;
}

function isTable(path: string): boolean {
  return TABLE_EXTENSIONS.some((ext) => path.toLowerCase().endsWith(ext));
}

/** Split name → data files (relative paths, in shard order) for one config of a dataset folder. */
export function discoverSplits(dir: string, subset?: string, label = dir): Map<string, string[]> {
  const readme = join(dir, 'README.md');
  return splitsFromListing(
    listFiles(dir),
    existsSync(readme) ? readFileSync(readme, 'utf8') : undefined,
    subset,
    label,
  );
}

/** The same from a file listing and the dataset card's text (a hub repo's tree before anything is downloaded). */
export function splitsFromListing(
  files: string[],
  readme: string | undefined,
  subset: string | undefined,
  label: string,
): Map<string, string[]> {
  if (files.some((f) => f.endsWith('.arrow')) && !files.some(isTable))
    throw new TlabError(
      `${label}: holds Arrow files (datasets.save_to_disk output), which this tool does not read`,
      "export the dataset with ds.to_parquet('<split>.parquet') per split, or point to the hub dataset",
    );
  const configs = readCardConfigs(readme);
  if (configs) {
    const names = configs.map((c) => c.config_name ?? 'default');
    const chosen = subset
      ? configs[names.indexOf(subset)]
      : (configs.find((c) => c.default) ?? configs[names.indexOf('default')] ?? configs[0]);
    if (!chosen)
      throw new TlabError(
        `${label}: subset '${subset}' not in the dataset card`,
        `subsets: ${validChoices(names)}`,
      );
    return splitsFromDataFiles(chosen.data_files, files, label);
  }
  let tables = files.filter(isTable);
  if (subset) {
    tables = tables.filter((f) => f.startsWith(`${subset}/`));
    if (tables.length === 0) {
      const dirs = [...new Set(files.filter((f) => f.includes('/')).map((f) => f.split('/')[0]))];
      throw new TlabError(`${label}: no data files for subset '${subset}'`, `folders: ${validChoices(dirs)}`);
    }
  } else if (tables.some((f) => f.startsWith('default/')))
    tables = tables.filter((f) => f.startsWith('default/'));
  if (tables.length === 0)
    throw new TlabError(
      `${label}: no data files found`,
      `expected ${TABLE_EXTENSIONS.join(', ')} files (e.g. data/train-00000-of-00001.parquet)`,
    );
  const splits = new Map<string, string[]>();
  const named = tables.map((f) => [f, splitOfPath(f)] as const);
  const anyNamed = named.some(([, s]) => s !== undefined);
  for (const [file, split] of named) {
    if (anyNamed && split === undefined) continue; // e.g. a stray file beside train/test shards
    const key = split ?? 'train';
    splits.set(key, [...(splits.get(key) ?? []), file]);
  }
  return orderSplits(splits);
}

function splitsFromDataFiles(dataFiles: unknown, files: string[], label: string): Map<string, string[]> {
  const entries: [string, string[]][] = [];
  const patterns = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : [String(v)]);
  if (
    typeof dataFiles === 'string' ||
    (Array.isArray(dataFiles) && dataFiles.every((d) => typeof d === 'string'))
  )
    entries.push(['train', patterns(dataFiles)]);
  else if (Array.isArray(dataFiles))
    for (const item of dataFiles as { split?: string; path?: unknown }[])
      entries.push([item.split ?? 'train', patterns(item.path)]);
  else if (dataFiles && typeof dataFiles === 'object')
    for (const [split, v] of Object.entries(dataFiles)) entries.push([split, patterns(v)]);
  const splits = new Map<string, string[]>();
  for (const [split, globs] of entries) {
    const matched = files.filter((f) => globs.some((g) => globToRegExp(g).test(f)));
    if (matched.length === 0)
      throw new TlabError(
        `${label}: README.md configs: split '${split}' matches no file (${globs.join(', ')})`,
      );
    splits.set(split, matched);
  }
  return orderSplits(splits);
}

/** train, validation, test first, then any other split in name order: a stable processing order. */
export function orderSplits<T>(splits: Map<string, T>): Map<string, T> {
  const rank = (s: string): number => {
    const i = SPLIT_KEYWORDS.findIndex(([name]) => name === s);
    return i < 0 ? SPLIT_KEYWORDS.length : i;
  };
  return new Map([...splits].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)));
}
