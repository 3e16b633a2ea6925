/**
 * Builds one task folder from its config: plan splits and samples, stream the source once, format each
 * example (images written once), de-duplicate, add few-shot turns, write `<split>.jsonl` and `manifest.json`.
 * Everything is written into a hidden temp folder beside the task folder and renamed into place at the end,
 * so a failed or interrupted build never leaves a half-written task.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';
import { Rng } from '../../util/random.ts';
import { canonicalJson } from '../canonical-json.ts';
import { loadTasksFile, resplitFractions, type TaskConfig } from '../config.ts';
import { sha256Hex } from '../hash.ts';
import { openSource } from '../sources/open-source.ts';
import type { DataSource, SourceMode } from '../sources/types.ts';
import { type ChatMessage, TASK_FORMAT, type TaskExample, type TaskManifest } from '../task-format.ts';
import { toolVersion } from '../version.ts';
import { type EffectiveTask, type FormattedExample, formatExample } from './format-example.ts';
import { ImageStore } from './image-store.ts';
import { JsonlWriter } from './jsonl-writer.ts';
import { planSplits, type SplitPlan } from './plan.ts';
import { templateFields } from './template.ts';

export interface BuildOptions {
  /** Folder that receives `<task>/` (default: `formatted_datasets` beside the config). */
  outDir: string;
  /** Folder that relative dataset paths are resolved against. */
  baseDir: string;
  /** Config file name for error messages. */
  file: string;
  /** Overrides every task's `mode`. */
  mode?: SourceMode;
  quiet?: boolean;
}

export interface BuildResult {
  task: string;
  dir: string;
  splits: Record<string, number>;
  images: number;
  manifest: TaskManifest;
}

/**
 * Rows formatted concurrently (image decoding and hashing overlap on libvips' threads), bounded in count and
 * in image bytes so a batch of large images does not defeat streaming's memory bound.
 */
const BATCH_ROWS = 32;
const BATCH_BYTES = 4 << 20;

function imageBytes(row: Record<string, unknown>, columns: string[]): number {
  let n = 0;
  const add = (v: unknown): void => {
    if (v instanceof Uint8Array) n += v.byteLength;
    else if (Array.isArray(v)) v.forEach(add);
    else if (v && typeof v === 'object') add((v as { bytes?: unknown }).bytes);
  };
  for (const c of columns) add(row[c]);
  return n;
}

/** Builds every task of an experiment file (or the named ones), one after the other. */
export async function buildTasksFromFile(
  configFile: string,
  options: { outDir?: string; tasks?: string[]; mode?: SourceMode; quiet?: boolean } = {},
): Promise<BuildResult[]> {
  const parsed = loadTasksFile(configFile);
  const baseDir = dirname(resolve(configFile));
  const names = options.tasks?.length ? options.tasks : Object.keys(parsed.tasks);
  for (const name of names)
    if (!parsed.tasks[name])
      throw new TlabError(
        `${basename(configFile)}: tasks: no task '${name}'`,
        `tasks: ${validChoices(Object.keys(parsed.tasks))}`,
      );
  const results: BuildResult[] = [];
  for (const name of names)
    results.push(
      await buildTaskDataset(name, parsed.tasks[name], {
        outDir: options.outDir ?? join(baseDir, 'formatted_datasets'),
        baseDir,
        file: basename(configFile),
        mode: options.mode,
        quiet: options.quiet,
      }),
    );
  return results;
}

/** SHA-256 of a task's config as written (canonical JSON; `mode` left out, it never changes the output). */
export function taskConfigHash(task: TaskConfig): string {
  const { mode: _mode, ...config } = task;
  return sha256Hex(canonicalJson(config));
}

export async function buildTaskDataset(
  name: string,
  task: TaskConfig,
  options: BuildOptions,
): Promise<BuildResult> {
  const taskPath = ['tasks', name];
  const finalDir = join(options.outDir, name);
  mkdirSync(options.outDir, { recursive: true });
  // Leftovers of interrupted builds of this task.
  for (const entry of readdirSync(options.outDir))
    if (entry.startsWith(`.${name}.building-`) || entry.startsWith(`.${name}.replaced-`))
      rmSync(join(options.outDir, entry), { recursive: true, force: true });
  const tmpDir = join(options.outDir, `.${name}.building-${process.pid}`);
  mkdirSync(tmpDir);
  const source = await openSource(task, {
    baseDir: options.baseDir,
    file: options.file,
    taskPath,
    mode: options.mode,
  }).catch((error) => {
    rmSync(tmpDir, { recursive: true, force: true });
    throw error;
  });
  const writers: JsonlWriter[] = [];
  try {
    const manifest = await buildInto(tmpDir, name, task, source, options, writers);
    writeFileAtomic(join(tmpDir, 'manifest.json'), `${canonicalJson(manifest, 2)}\n`);
    if (existsSync(finalDir)) {
      const old = join(options.outDir, `.${name}.replaced-${process.pid}`);
      renameSync(finalDir, old);
      renameSync(tmpDir, finalDir);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmpDir, finalDir);
    return {
      task: name,
      dir: finalDir,
      splits: Object.fromEntries(Object.entries(manifest.splits).map(([s, v]) => [s, v.rows])),
      images: manifest.images.count,
      manifest,
    };
  } catch (error) {
    for (const w of writers) w.abort();
    rmSync(tmpDir, { recursive: true, force: true });
    throw error;
  } finally {
    await source.close();
  }
}

/** Source defaults under the task's own fields; every column named must exist. */
function effectiveTask(
  task: TaskConfig,
  source: DataSource,
  where: { file: string; taskPath: string[] },
): EffectiveTask {
  const d = source.defaults ?? {};
  const imageColumn = task.image_column ?? d.image_column;
  const eff: EffectiveTask = {
    system_prompt: task.system_prompt ?? d.system_prompt,
    user_prompt: task.user_prompt ?? d.user_prompt,
    user_text_column: task.user_text_column ?? d.user_text_column,
    image_columns: imageColumn === undefined ? [] : Array.isArray(imageColumn) ? imageColumn : [imageColumn],
    assistant_text_column: task.assistant_text_column ?? d.assistant_text_column,
    label_column: task.label_column ?? d.label_column,
    uid_column: task.uid_column ?? d.uid_column,
    metadata_columns: task.metadata_columns ?? d.metadata_columns,
    dedupe: task.dedupe,
    classLabels: source.classLabels ?? {},
  };
  const available = source.columns;
  const check = (fieldName: string, column: string | undefined): void => {
    if (column !== undefined && !available.includes(column))
      throw new TlabError(
        `${where.file}: ${[...where.taskPath, fieldName].join('.')}: no column '${column}' in ${source.description}`,
        `available columns: ${validChoices(available, 50)}`,
      );
  };
  for (const c of eff.image_columns) check('image_column', c);
  check('user_text_column', eff.user_text_column);
  check('assistant_text_column', eff.assistant_text_column);
  check('label_column', eff.label_column);
  check('uid_column', eff.uid_column);
  for (const c of eff.metadata_columns ?? []) check('metadata_columns', c);
  if (Array.isArray(eff.dedupe)) for (const c of eff.dedupe) check('dedupe', c);
  for (const [fieldName, template] of [
    ['user_prompt', eff.user_prompt],
    ['system_prompt', eff.system_prompt],
  ] as const)
    for (const column of templateFields(template ?? '')) check(fieldName, column);
  if (!eff.user_prompt && !eff.user_text_column && eff.image_columns.length === 0)
    throw new TlabError(
      `${where.file}: ${where.taskPath.join('.')}: nothing to ask: set user_prompt, user_text_column or image_column`,
    );
  return eff;
}

async function buildInto(
  dir: string,
  name: string,
  task: TaskConfig,
  source: DataSource,
  options: BuildOptions,
  writers: JsonlWriter[],
): Promise<TaskManifest> {
  const where = { file: options.file, taskPath: ['tasks', name] };
  const eff = effectiveTask(task, source, where);
  const plan = planSplits(task, source.splits, { ...where, description: source.description });
  const images = new ImageStore(dir);
  const system: ChatMessage | undefined = eff.system_prompt
    ? { role: 'system', content: [{ type: 'text', text: eff.system_prompt }] }
    : undefined;

  const shots = task.few_shot ? await fewShotPool(task, eff, source, plan, images, where) : undefined;

  const outWriters = new Map(
    plan.outputs.map((out) => {
      const w = new JsonlWriter(join(dir, `${out}.jsonl`));
      writers.push(w);
      return [out, w] as const;
    }),
  );
  const seen = eff.dedupe === false ? undefined : new Set<string>();
  const seenUids = new Set<string>();
  const dropped: Record<string, number> = Object.fromEntries(plan.outputs.map((o) => [o, 0]));
  const labelsSeen = new Set<string>();
  const total = Object.values(plan.selected).reduce((a, b) => a + b, 0);
  const progress = new Progress({ total, label: `data ${name}`, unit: 'rows', silent: options.quiet });

  for (const [sourceSplit, selection] of plan.selections) {
    let batch: { record: Parameters<typeof formatExample>[1]; out: string }[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      const formatted = await Promise.all(
        batch.map(({ record }) => formatExample(eff, record, sourceSplit, images, source.root)),
      );
      formatted.forEach((ex, k) => {
        const out = batch[k].out;
        if (seen) {
          if (seen.has(ex.dedupeKey)) {
            dropped[out]++;
            return;
          }
          seen.add(ex.dedupeKey);
        }
        if (seenUids.has(ex.uid))
          throw new TlabError(
            `${source.description}: uid '${ex.uid}' appears twice (second at ${ex.metadata.source_file ?? sourceSplit} row ${ex.metadata.source_row ?? ex.metadata.source_index})`,
            `uids must be unique; set dedupe: true to drop repeats, or choose another uid_column`,
          );
        seenUids.add(ex.uid);
        if (ex.label !== undefined) labelsSeen.add(ex.label);
        (outWriters.get(out) as JsonlWriter).write(toExample(ex, out, system, shots, task.few_shot?.k ?? 0));
      });
      progress.tick(batch.length);
      batch = [];
      batchBytes = 0;
    };
    for await (const record of source.rows(sourceSplit, selection)) {
      const code = selection[record.index];
      if (!code) continue;
      batch.push({ record, out: plan.outputs[code - 1] });
      batchBytes += imageBytes(record.row, eff.image_columns);
      if (batch.length >= BATCH_ROWS || batchBytes >= BATCH_BYTES) await flush();
    }
    await flush();
  }
  progress.finish();

  const splits: TaskManifest['splits'] = {};
  for (const [out, w] of outWriters) splits[out] = { file: `${out}.jsonl`, rows: w.rows, sha256: w.close() };
  const fingerprint = await source.fingerprint();
  const generator = source.details?.generator as TaskManifest['generator'] | undefined;
  const labels = eff.label_column
    ? (source.labels ?? eff.classLabels[eff.label_column] ?? [...labelsSeen].sort())
    : undefined;
  const { mode: _mode, ...config } = task;
  return {
    format: TASK_FORMAT,
    task: name,
    tool: { name: 'transferlab', version: toolVersion() },
    source: {
      kind: fingerprint.kind,
      dataset: fingerprint.dataset,
      ...(fingerprint.revision ? { revision: fingerprint.revision } : {}),
      ...(fingerprint.subset ? { subset: fingerprint.subset } : {}),
      files: fingerprint.files,
      splits: Object.fromEntries(source.splits.map((s) => [s.name, s.numRows])),
    },
    ...(generator ? { generator } : {}),
    config_sha256: taskConfigHash(task),
    config: {
      ...config,
      system_prompt: eff.system_prompt,
      user_prompt: eff.user_prompt,
      user_text_column: eff.user_text_column,
      image_column: eff.image_columns.length ? eff.image_columns : undefined,
      assistant_text_column: eff.assistant_text_column,
      label_column: eff.label_column,
      uid_column: eff.uid_column,
      metadata_columns: eff.metadata_columns,
      grader: task.grader ?? source.defaults?.grader,
    },
    sampling: {
      seed: task.seed,
      ...(task.sample_percent !== undefined ? { sample_percent: task.sample_percent } : {}),
      ...(task.n_samples !== undefined ? { n_samples: task.n_samples } : {}),
      ...(resplitFractions(task) ? { resplit: resplitFractions(task) } : {}),
      dedupe: task.dedupe,
      selected: plan.selected,
      duplicates_dropped: dropped,
    },
    splits,
    images: { dir: 'images', count: images.count, bytes: images.bytes },
    ...((task.grader ?? source.defaults?.grader) ? { grader: task.grader ?? source.defaults?.grader } : {}),
    ...(labels ? { labels } : {}),
    ...(shots && task.few_shot
      ? { few_shot: { k: task.few_shot.k, split: task.few_shot.split, pool: shots.map((s) => s.uid) } }
      : {}),
  };
}

interface Shot {
  uid: string;
  user: ChatMessage;
  answer: string;
}

/** Candidate shots: a seeded sample of the few-shot split's selected rows, read and formatted first. */
async function fewShotPool(
  task: TaskConfig,
  eff: EffectiveTask,
  source: DataSource,
  plan: SplitPlan,
  images: ImageStore,
  where: { file: string; taskPath: string[] },
): Promise<Shot[]> {
  const fewShot = task.few_shot as NonNullable<TaskConfig['few_shot']>;
  const code = plan.outputs.indexOf(fewShot.split) + 1;
  const field = `${where.file}: ${[...where.taskPath, 'few_shot', 'split'].join('.')}`;
  if (code === 0)
    throw new TlabError(
      `${field}: no output split '${fewShot.split}'`,
      `splits: ${validChoices(plan.outputs)}`,
    );
  if (!eff.assistant_text_column)
    throw new TlabError(`${field}: few-shot prompts need an assistant_text_column`);
  const candidates = plan.selected[fewShot.split];
  const size = Math.min(candidates, fewShot.pool_size ?? Math.max(32, fewShot.k * 4));
  const ranks = new Set(Rng.at(task.seed, 'few-shot-pool').sampleIndices(candidates, size));
  const shots: Shot[] = [];
  let rank = 0;
  for (const [sourceSplit, selection] of plan.selections) {
    const pick = new Uint8Array(selection.length);
    let any = false;
    for (let i = 0; i < selection.length; i++)
      if (selection[i] === code) {
        if (ranks.has(rank)) {
          pick[i] = 1;
          any = true;
        }
        rank++;
      }
    if (!any) continue;
    for await (const record of source.rows(sourceSplit, pick)) {
      if (!pick[record.index]) continue;
      const ex = await formatExample(eff, record, sourceSplit, images, source.root);
      shots.push({ uid: ex.uid, user: ex.user, answer: ex.answer as string });
    }
  }
  return shots;
}

function toExample(
  ex: FormattedExample,
  split: string,
  system: ChatMessage | undefined,
  shots: Shot[] | undefined,
  k: number,
): TaskExample {
  const messages: ChatMessage[] = system ? [system] : [];
  if (shots && shots.length > 0) {
    // Each example draws its own k shots (seeded by its uid), never itself.
    const others = shots.filter((s) => s.uid !== ex.uid);
    const rng = Rng.at(ex.uid, 'shots');
    for (const i of rng.sampleIndices(others.length, Math.min(k, others.length)))
      messages.push(others[i].user, {
        role: 'assistant',
        content: [{ type: 'text', text: others[i].answer }],
      });
  }
  messages.push(ex.user);
  if (ex.answer !== undefined)
    messages.push({ role: 'assistant', content: [{ type: 'text', text: ex.answer }] });
  return {
    uid: ex.uid,
    split,
    messages,
    ...(ex.answer !== undefined ? { answer: ex.answer } : {}),
    ...(ex.label !== undefined ? { label: ex.label } : {}),
    metadata: ex.metadata,
  };
}
