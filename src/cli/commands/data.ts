/** `tlab data build|inspect|gallery|generators`: task datasets. */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { buildTasksFromFile } from '../../data/build/build-task.ts';
import { inspectExample } from '../../data/inspect.ts';
import { loadTaskSplit, openTask, resolveTaskDir } from '../../data/read.ts';
import {
  describeGenerator,
  formatGeneratorDescription,
  generatorByName,
} from '../../data/synthetic/describe.ts';
import { GENERATORS } from '../../data/synthetic/index.ts';
import type { TaskExample } from '../../data/task-format.ts';
import { renderGallery } from '../../report/gallery.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { Rng } from '../../util/random.ts';
import { nonNegativeInt, positiveInt, printJson } from '../options.ts';

const ROOT_HELP = 'folder holding the built tasks';

function uidList(value: string): string[] {
  const uids = value
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  if (uids.length === 0) throw new InvalidArgumentError('expected a comma-separated list of uids');
  return uids;
}

/** uid, prediction and score of each row of a failure list; a bad line names the file and line. */
function readFailures(path: string): { uid: string; prediction: string; score: number }[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TlabError(`${path}: cannot read the failure list (${(error as NodeJS.ErrnoException).code})`);
  }
  return text
    .split('\n')
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => line.trim())
    .map(({ line, i }) => {
      let row: { uid?: unknown; prediction?: unknown; score?: unknown };
      try {
        row = JSON.parse(line);
      } catch {
        throw new TlabError(`${path}:${i + 1}: not JSON`);
      }
      if (typeof row.uid !== 'string') throw new TlabError(`${path}:${i + 1}: a failure row needs a uid`);
      return { uid: row.uid, prediction: String(row.prediction ?? ''), score: Number(row.score ?? 0) };
    });
}

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('build and look at task datasets');

  data
    .command('build')
    .description(
      'build formatted_datasets/<task>/ (splits as JSONL chat messages, images, manifest.json) from a config',
    )
    .argument('<config>', 'experiment YAML with a tasks: section')
    .option('-o, --out <dir>', 'output folder (default: formatted_datasets beside the config)')
    .option('-t, --task <name...>', 'build only these tasks')
    .addOption(
      new Option('--mode <mode>', 'override every task: stream row groups or materialise files').choices([
        'streaming',
        'cached',
      ]),
    )
    .option('-q, --quiet', 'no progress output and nothing on stdout (unless --json)')
    .option('--json', 'print one JSON summary per task (task, dir, splits, images), also with --quiet')
    .action(
      async (
        config: string,
        opts: {
          out?: string;
          task?: string[];
          mode?: 'streaming' | 'cached';
          quiet?: boolean;
          json?: boolean;
        },
      ) => {
        const results = await buildTasksFromFile(config, {
          outDir: opts.out ? resolve(opts.out) : undefined,
          tasks: opts.task,
          mode: opts.mode,
          quiet: opts.quiet,
        });
        // The summary is the default output; --quiet silences it unless asked for explicitly.
        if (opts.quiet && !opts.json) return;
        for (const r of results) printJson({ task: r.task, dir: r.dir, splits: r.splits, images: r.images });
      },
    );

  data
    .command('inspect')
    .description("print one example's metadata, prompt and answer by uid")
    .argument('<task>', 'task name (under --root) or task folder')
    .argument('<uid>', 'example uid')
    .option('-r, --root <dir>', ROOT_HELP, 'formatted_datasets')
    .option('-e, --export <dir>', "copy the example's images into this folder")
    .action(async (task: string, uid: string, opts: { root: string; export?: string }) => {
      const result = await inspectExample(resolveTaskDir(task, opts.root), uid, opts.export);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    });

  data
    .command('gallery')
    .description('a PNG contact sheet of examples with their captions')
    .argument('<task>', 'task name (under --root) or task folder')
    .option('-r, --root <dir>', ROOT_HELP, 'formatted_datasets')
    .option('--uids <uids>', 'comma-separated uids to show', uidList)
    .option(
      '--failures <file>',
      'a failure list of the eval grid (failures/<model>/<task>.jsonl): its samples with each prediction',
    )
    .option('--limit <n>', 'with --failures: at most this many (worst first)', positiveInt)
    .option('--random <n>', 'show n random examples (default 12)', positiveInt)
    .option('--split <split>', 'split to draw from (default: test if present)')
    .option('--seed <n>', 'seed for --random', nonNegativeInt, 0)
    .option('--columns <n>', 'cells per row', positiveInt)
    .option('--thumb <px>', 'image height per cell', positiveInt, 200)
    .option('-o, --out <file>', 'PNG to write (default: gallery-<task>.png)')
    .action(
      async (
        taskArg: string,
        opts: {
          root: string;
          uids?: string[];
          failures?: string;
          limit?: number;
          random?: number;
          split?: string;
          seed: number;
          columns?: number;
          thumb: number;
          out?: string;
        },
      ) => {
        const task = openTask(resolveTaskDir(taskArg, opts.root));
        const split = opts.split ?? (task.splits.includes('test') ? 'test' : task.splits[0]);
        let examples: TaskExample[];
        let notes: Map<string, string> | undefined;
        if (opts.failures) {
          const rows = readFailures(opts.failures).slice(0, opts.limit ?? 24);
          if (rows.length === 0) throw new TlabError(`${opts.failures}: no failures to show`);
          opts.uids = rows.map((r) => r.uid);
          notes = new Map(
            rows.map((r) => [r.uid, `predicted: ${r.prediction || '(nothing)'}  (score ${r.score})`]),
          );
        }
        if (opts.uids) {
          const wanted = new Set(opts.uids);
          const found = new Map<string, TaskExample>();
          for (const s of task.splits)
            for (const ex of await loadTaskSplit(task.dir, s)) if (wanted.has(ex.uid)) found.set(ex.uid, ex);
          const missing = opts.uids.filter((u) => !found.has(u));
          if (missing.length)
            throw new TlabError(
              `task '${task.name}': no example with uid ${missing.map((u) => `'${u}'`).join(', ')}`,
            );
          examples = opts.uids.map((u) => found.get(u) as TaskExample);
        } else {
          if (!task.splits.includes(split))
            throw new TlabError(
              `task '${task.name}': no split '${split}'`,
              `splits: ${validChoices(task.splits)}`,
            );
          const all = await loadTaskSplit(task.dir, split);
          const n = Math.min(opts.random ?? 12, all.length);
          examples = new Rng(opts.seed)
            .sampleIndices(all.length, n)
            .sort((a, b) => a - b)
            .map((i) => all[i]);
        }
        const png = await renderGallery(examples, {
          columns: opts.columns,
          thumb: opts.thumb,
          title: `${task.name}: ${examples.length} example${examples.length === 1 ? '' : 's'}${opts.uids ? '' : ` from ${split}`}`,
          imagePath: task.imagePath,
          notes,
        });
        const out = resolve(opts.out ?? `gallery-${task.name}.png`);
        writeFileSync(out, png);
        printJson({ task: task.name, gallery: out, uids: examples.map((e) => e.uid) });
      },
    );

  data
    .command('generators')
    .description('list the synthetic generators (dataset: synthetic:<name>)')
    .option(
      '--describe [name]',
      "every parameter's type, default and valid values (of one generator, or all)",
    )
    .option('--json', 'with --describe: one JSON object per generator')
    .action((opts: { describe?: string | boolean; json?: boolean }) => {
      if (opts.describe === undefined) {
        for (const g of Object.values(GENERATORS))
          printJson({ name: `synthetic:${g.name}`, version: g.version, description: g.description });
        return;
      }
      const chosen =
        typeof opts.describe === 'string' ? [generatorByName(opts.describe)] : Object.values(GENERATORS);
      const described = chosen.map(describeGenerator);
      if (opts.json) for (const d of described) printJson(d);
      else process.stdout.write(described.map(formatGeneratorDescription).join('\n'));
    });
}
