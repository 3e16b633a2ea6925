/**
 * Geometry results of an experiment (`tlab geometry run` writes geometry/profile_<condition>.json, overlap.json,
 * cka.json, probes.json and summary.json). Every folder under geometry/ holding profile files is one analysis;
 * the extracted representations are not read.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isJsonObject, readJsonFile } from '../util/json-file.ts';

export interface GeometryLayer {
  layer: number;
  /** Intrinsic dimension (GRIDE at the analysis' scale). */
  id: number | null;
  /** ARI / AMI / label overlap of the density-peak clusters, per label set. */
  labels: Record<string, { ari: number | null; ami: number | null; labelOverlap: number | null }>;
  clusters: number | null;
  n: number | null;
}

export interface GeometryAnalysis {
  /** Folder relative to the experiment (geometry, or geometry/<name>). */
  folder: string;
  name: string;
  profiles: { condition: string; layers: GeometryLayer[] }[];
  overlap: { pair: [string, string]; k: number; layers: { layer: number; value: number; n: number }[] }[];
  cka: { pair: [string, string]; layersA: number[]; layersB: number[]; values: number[][] }[];
  probes: { condition: string; label: string; layer: number; accuracy: number }[];
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function readList<T>(path: string, warnings: string[], check: (v: unknown) => v is T): T[] {
  if (!existsSync(path)) return [];
  try {
    const value = readJsonFile(path);
    if (!Array.isArray(value)) throw new Error('expected a list');
    return value.filter((v, i) => {
      if (check(v)) return true;
      warnings.push(`${path}: item ${i} is not a geometry result of the expected shape; left out`);
      return false;
    });
  } catch (error) {
    warnings.push(`${path}: ${(error as Error).message}`);
    return [];
  }
}

const isPair = (v: unknown): v is [string, string] =>
  Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string');

function readAnalysis(dir: string, folder: string, warnings: string[]): GeometryAnalysis | null {
  const files = readdirSync(folder)
    .filter((f) => /^profile_.+\.json$/.test(f))
    .sort();
  if (files.length === 0 && !existsSync(join(folder, 'cka.json'))) return null;
  const profiles: GeometryAnalysis['profiles'] = [];
  for (const f of files) {
    const path = join(folder, f);
    try {
      const v = readJsonFile(path);
      if (!isJsonObject(v) || typeof v.condition !== 'string' || !Array.isArray(v.layers))
        throw new Error('expected {condition, layers}');
      profiles.push({
        condition: v.condition,
        layers: v.layers.filter(isJsonObject).map((l) => ({
          layer: Number(l.layer),
          id: num(l.id),
          n: num(l.n),
          clusters: num(l.clusters),
          labels: Object.fromEntries(
            Object.entries(isJsonObject(l.labels) ? l.labels : {}).map(([k, s]) => [
              k,
              isJsonObject(s)
                ? { ari: num(s.ari), ami: num(s.ami), labelOverlap: num(s.labelOverlap) }
                : { ari: null, ami: null, labelOverlap: null },
            ]),
          ),
        })),
      });
    } catch (error) {
      warnings.push(`${path}: ${(error as Error).message}`);
    }
  }
  const overlap = readList(
    join(folder, 'overlap.json'),
    warnings,
    (v): v is GeometryAnalysis['overlap'][number] =>
      isJsonObject(v) && isPair(v.pair) && Array.isArray(v.layers),
  );
  const cka = readList(
    join(folder, 'cka.json'),
    warnings,
    (v): v is GeometryAnalysis['cka'][number] =>
      isJsonObject(v) &&
      isPair(v.pair) &&
      Array.isArray(v.values) &&
      Array.isArray(v.layersA) &&
      Array.isArray(v.layersB),
  );
  const probes: GeometryAnalysis['probes'] = [];
  const probesFile = join(folder, 'probes.json');
  if (existsSync(probesFile))
    try {
      const v = readJsonFile(probesFile);
      if (!isJsonObject(v)) throw new Error('expected an object keyed by condition');
      for (const [condition, rows] of Object.entries(v))
        for (const r of Array.isArray(rows) ? rows : [])
          if (isJsonObject(r) && isJsonObject(r.result) && num(r.result.accuracy) !== null)
            probes.push({
              condition,
              label: String(r.label),
              layer: Number(r.layer),
              accuracy: num(r.result.accuracy)!,
            });
    } catch (error) {
      warnings.push(`${probesFile}: ${(error as Error).message}`);
    }
  let name = relative(dir, folder);
  const summary = join(folder, 'summary.json');
  if (existsSync(summary))
    try {
      const s = readJsonFile(summary);
      if (isJsonObject(s) && typeof s.name === 'string') name = s.name;
    } catch (error) {
      warnings.push(`${summary}: ${(error as Error).message}`);
    }
  return { folder: relative(dir, folder), name, profiles, overlap, cka, probes };
}

export function readGeometry(dir: string, warnings: string[]): GeometryAnalysis[] {
  const root = join(dir, 'geometry');
  if (!existsSync(root) || !statSync(root).isDirectory()) return [];
  const out: GeometryAnalysis[] = [];
  const visit = (folder: string) => {
    const a = readAnalysis(dir, folder, warnings);
    if (a) out.push(a);
    for (const name of readdirSync(folder).sort()) {
      const sub = join(folder, name);
      if (name.startsWith('.') || name === 'representations' || name === 'plots') continue;
      if (statSync(sub).isDirectory()) visit(sub);
    }
  };
  visit(root);
  return out;
}
