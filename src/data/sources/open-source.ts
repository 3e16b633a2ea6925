/**
 * Turns a task's `dataset:` into a DataSource: `synthetic:<generator>`, a local path (a file, a folder of
 * shards in Hugging Face layout, or an image-class folder), or a hub id `org/name` (cache first).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import { TlabError } from '../../util/errors.ts';
import type { TaskConfig } from '../config.ts';
import { HUB_ID, resolveHubDataset } from './hf-hub.ts';
import { discoverSplits, listFiles } from './hf-layout.ts';
import { ImageFolderSource, isImageFile } from './image-folder.ts';
import { SyntheticSource } from './synthetic-source.ts';
import { type ShardSpec, TABLE_EXTENSIONS, TabularSource } from './tabular-source.ts';
import type { DataSource, SourceMode } from './types.ts';

export interface OpenSourceOptions {
  /** Folder that relative dataset paths are resolved against (the config file's folder). */
  baseDir: string;
  /** For error messages: the config file's name and the task's field path. */
  file: string;
  taskPath: string[];
  mode?: SourceMode;
}

export async function openSource(task: TaskConfig, options: OpenSourceOptions): Promise<DataSource> {
  const mode = options.mode ?? task.mode;
  const { dataset } = task;
  const field = `${options.file}: ${[...options.taskPath, 'dataset'].join('.')}`;
  if (dataset.startsWith('synthetic:'))
    return SyntheticSource.open(dataset.slice('synthetic:'.length), task.generator, task.seed, {
      file: options.file,
      path: [...options.taskPath, 'generator'],
    });
  const local = isAbsolute(dataset) ? dataset : resolve(options.baseDir, dataset);
  if (existsSync(local)) {
    // The manifest shows paths relative to the config, so moving an experiment folder keeps it identical.
    const shown = isAbsolute(dataset) ? dataset : relative(options.baseDir, local) || '.';
    if (statSync(local).isFile()) {
      if (!TABLE_EXTENSIONS.some((e) => local.toLowerCase().endsWith(e)))
        throw new TlabError(
          `${field}: '${dataset}' is not a data file`,
          `readable: ${TABLE_EXTENSIONS.join(', ')}, or a folder`,
        );
      const shard: ShardSpec = { displayPath: basename(local), absolutePath: local };
      return TabularSource.open(
        shown,
        { kind: 'file', dataset: shown },
        new Map([['train', [shard]]]),
        mode,
        dirname(local),
      );
    }
    const files = listFiles(local);
    if (
      !files.some((f) => TABLE_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e))) &&
      files.some(isImageFile)
    )
      return ImageFolderSource.open(local, shown, mode);
    const layout = discoverSplits(local, task.subset, shown);
    const splits = new Map(
      [...layout].map(([split, paths]) => [
        split,
        paths.map((p): ShardSpec => ({ displayPath: p, absolutePath: resolve(local, p) })),
      ]),
    );
    return TabularSource.open(shown, { kind: 'folder', dataset: shown }, splits, mode, local);
  }
  if (!HUB_ID.test(dataset) || dataset.startsWith('.'))
    throw new TlabError(
      `${field}: '${dataset}' is neither a file or folder (relative to ${options.baseDir}) nor a hub id 'org/name'`,
      'use a local path, org/name, or synthetic:<generator>',
    );
  const hub = await resolveHubDataset(dataset, task.revision ?? 'main', task.subset, mode);
  return TabularSource.open(
    dataset,
    { kind: 'hub', dataset, revision: hub.commit, ...(task.subset ? { subset: task.subset } : {}) },
    hub.splits,
    mode,
    hub.root,
  );
}
