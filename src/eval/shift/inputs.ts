/**
 * Shift inputs from files: `<task>=<file>[#tensor]` features (.npy, .safetensors, .parquet#column) or a folder
 * written by `tlab metrics features` (features.safetensors, labels.npy, features.json), and `<task>=<file>` labels.
 * Class indices become class names through the features.json beside a label file (its `classes` list), so two
 * tasks' label histograms are compared by name.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readLabelFile, readMatrixFile } from '../../metrics/features.ts';
import { TlabError } from '../../util/errors.ts';
import { isJsonObject, readJsonFile } from '../../util/json-file.ts';
import type { ShiftTask } from './analysis.ts';

export interface TaskFileArg {
  task: string;
  spec: string;
}

/** Parses `<task>=<spec>` (the option name goes into errors). */
export function parseTaskFileArg(value: string, option: string): TaskFileArg {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1)
    throw new TlabError(
      `${option} ${value}: expected <task>=<file> (e.g. ${option} qa=feats/qa/features.safetensors)`,
    );
  return { task: value.slice(0, eq), spec: value.slice(eq + 1) };
}

function pathOf(spec: string): string {
  const hash = spec.lastIndexOf('#');
  return hash > 0 && !spec.slice(hash).includes('/') ? spec.slice(0, hash) : spec;
}

/** Class names of the labels read from `spec`: from features.json beside it when it lists `classes`. */
async function readClassNames(spec: string): Promise<{ labels: string[]; source: string }> {
  const { labels, name } = await readLabelFile(spec);
  const meta = join(dirname(pathOf(spec)), 'features.json');
  let classes: string[] | null = null;
  if (existsSync(meta)) {
    const doc = readJsonFile(meta);
    if (isJsonObject(doc) && Array.isArray(doc.classes) && doc.classes.every((c) => typeof c === 'string'))
      classes = doc.classes as string[];
  }
  const out: string[] = new Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!Number.isInteger(v)) throw new TlabError(`${name}: row ${i} is ${v}; labels must be integers`);
    if (classes) {
      if (v < 0 || v >= classes.length)
        throw new TlabError(
          `${name}: row ${i} is ${v}, outside the ${classes.length} classes listed in ${meta}`,
        );
      out[i] = classes[v];
    } else out[i] = String(v);
  }
  return { labels: out, source: classes ? `${name} (class names from ${meta})` : name };
}

export async function loadShiftTasks(features: TaskFileArg[], labels: TaskFileArg[]): Promise<ShiftTask[]> {
  const tasks = new Map<string, ShiftTask>();
  const get = (name: string) => {
    let t = tasks.get(name);
    if (!t) {
      t = { name };
      tasks.set(name, t);
    }
    return t;
  };
  for (const { task, spec } of features) {
    const t = get(task);
    if (t.features) throw new TlabError(`--features ${task}=...: task '${task}' is given twice`);
    let file = spec;
    if (existsSync(spec) && statSync(spec).isDirectory()) {
      file = join(spec, 'features.safetensors');
      if (!existsSync(file))
        throw new TlabError(
          `--features ${task}=${spec}: the folder has no features.safetensors (from \`tlab metrics features\`)`,
        );
      const lab = join(spec, 'labels.npy');
      if (existsSync(lab) && !labels.some((l) => l.task === task)) {
        const r = await readClassNames(lab);
        t.labels = r.labels;
        t.labelsSource = r.source;
      }
    }
    const m = await readMatrixFile(file);
    t.features = m;
    t.featuresSource = m.name;
  }
  const seen = new Set<string>();
  for (const { task, spec } of labels) {
    if (seen.has(task)) throw new TlabError(`--labels ${task}=...: task '${task}' is given twice`);
    seen.add(task);
    const t = get(task);
    const r = await readClassNames(spec);
    t.labels = r.labels;
    t.labelsSource = r.source;
  }
  return [...tasks.values()];
}
