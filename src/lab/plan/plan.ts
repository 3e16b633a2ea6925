/**
 * Expands an experiment into its runs: data → tokenizers → the zoo's pre-training → fine-tuning (models × tasks ×
 * strategies × LoRA ranks × component flags × seeds) → the eval grid (one run per evaluated model) and features →
 * estimator scores → the summary. A run's id is a content hash of its stage, its normalised config, the ids of the
 * runs it depends on and the fingerprints of its outside inputs (model folders by their files), so changing one
 * setting changes exactly the ids of the runs it affects, and everything downstream of them.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TaskConfig } from '../../data/config.ts';
import { sha256Hex } from '../../data/hash.ts';
import { GENERATORS } from '../../data/synthetic/index.ts';
import { createGrader } from '../../eval/graders/index.ts';
import { folderFingerprint, HashCache } from '../../eval/grid/fingerprint.ts';
import { METRICS } from '../../metrics/registry.ts';
import { COMPONENT_ALIASES } from '../../train/strategy.ts';
import { didYouMean } from '../../util/did-you-mean.ts';
import { TlabError, validChoices } from '../../util/errors.ts';
import { zodIssuesError } from '../../util/zod-errors.ts';
import type { LoadedExperiment } from '../config/load.ts';
import {
  COMPONENT_FLAGS,
  type ExperimentConfig,
  LabTrainingSchema,
  type TokenizerSpec,
  type ZooModelConfig,
} from '../config/schema.ts';
import { externalFor } from '../external/plan-settings.ts';
import { type ParamValue, PLAN_SCHEMA, type Plan, type PlannedRun, type Stage } from './types.ts';

/** Bump when a stage's outputs change for the same config, so old runs are redone. */
const LAB_VERSION = 1;

type ModelKindGuess =
  | 'causal-lm'
  | 'vlm'
  | 'image-classifier'
  | 'sequence-classifier'
  | 'vision-encoder'
  | 'other';

/** The components a model of each kind has (finetuning.learning_rates names any of them; each run gets its own). */
const KIND_COMPONENTS: Record<ModelKindGuess, readonly string[]> = {
  'causal-lm': ['decoder'],
  vlm: ['encoder', 'projector', 'decoder'],
  'image-classifier': ['encoder', 'head'],
  'vision-encoder': ['encoder', 'head'],
  'sequence-classifier': ['decoder', 'head'],
  other: [],
};
const ALL_COMPONENTS = ['encoder', 'projector', 'decoder', 'head'];

/**
 * finetuning.learning_rates for one model: the entries naming components it has (aliases resolved), so one grid-wide
 * setting (e.g. `head: 0.01` for the classifiers' new heads) applies to the models it concerns; null when none.
 */
function learningRatesFor(
  rates: Record<string, number> | undefined,
  kind: ModelKindGuess,
): Record<string, number> | null {
  if (!rates) return null;
  const kept = Object.entries(rates).filter(([c]) =>
    KIND_COMPONENTS[kind].includes(COMPONENT_ALIASES[c] ?? c),
  );
  return kept.length ? Object.fromEntries(kept) : null;
}

/** The experiment folder: `out` (relative to the directory tlab runs in), default experiments/<name>. */
export function experimentDir(config: ExperimentConfig, cwd = process.cwd()): string {
  return resolve(cwd, config.out ?? join('experiments', config.name));
}

/** What a task's built examples will hold, from its config alone (the generator's defaults included). */
export function taskTraits(
  task: TaskConfig,
  where: { file: string; path: string[] } = { file: '<experiment>', path: ['tasks'] },
): { images: boolean; labels: boolean; splits: string[] | null } {
  let images = Boolean(task.image_column);
  let labels = Boolean(task.label_column);
  let splits: string[] | null = null;
  const synthetic = /^synthetic:(.+)$/.exec(task.dataset);
  if (synthetic) {
    const generator = GENERATORS[synthetic[1]];
    if (!generator)
      throw new TlabError(
        `${where.file}: ${where.path.join('.')}.dataset: unknown generator 'synthetic:${synthetic[1]}'${didYouMean(synthetic[1], Object.keys(GENERATORS))}`,
        `generators: ${Object.keys(GENERATORS)
          .map((g) => `synthetic:${g}`)
          .join(', ')}`,
      );
    const parsed = generator.params.safeParse(task.generator ?? {});
    if (!parsed.success) throw zodIssuesError(where.file, [...where.path, 'generator'], parsed.error);
    {
      const defaults = generator.defaults(parsed.data);
      images ||= Boolean(defaults.image_column);
      labels ||= Boolean(defaults.label_column);
      splits = Object.keys((parsed.data as { splits: Record<string, number> }).splits);
    }
  }
  if (task.resplit) splits = Object.keys(task.resplit);
  else if (task.resplit_train_percent !== undefined)
    splits = [
      ...(task.resplit_train_percent > 0 ? ['train'] : []),
      ...(task.resplit_train_percent < 1 ? ['test'] : []),
    ];
  else if (task.splits) splits = Array.isArray(task.splits) ? task.splits : Object.keys(task.splits);
  return { images, labels, splits };
}

function kindOfFolder(dir: string, where: string): ModelKindGuess {
  let config: { model_type?: string; architectures?: string[] };
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch (error) {
    throw new TlabError(
      `${where}: ${dir}: not a model folder (${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no config.json' : (error as Error).message})`,
    );
  }
  const arch = config.architectures?.[0] ?? '';
  if (config.model_type === 'llava' || /ConditionalGeneration$/.test(arch)) return 'vlm';
  if (/ForImageClassification$/.test(arch)) return 'image-classifier';
  if (/ForSequenceClassification$/.test(arch)) return 'sequence-classifier';
  if (/(LMHeadModel|ForCausalLM)$/.test(arch)) return 'causal-lm';
  if (['vit', 'clip_vision_model', 'clip'].includes(config.model_type ?? '')) return 'vision-encoder';
  return ['gpt2', 'llama', 'qwen2'].includes(config.model_type ?? '') ? 'causal-lm' : 'other';
}

function kindOfZooModel(
  m: ZooModelConfig,
  baseDir: string,
  where: string,
  config: ExperimentConfig,
): ModelKindGuess {
  if (m.path) return kindOfFolder(resolve(baseDir, m.path), where);
  const p = m.pretrain!;
  if (p.from) return kindOfZooModel(config.models[p.from], baseDir, where, config);
  if (p.objective !== 'causal-lm') return p.objective;
  return p.config?.model_type === 'llava' ? 'vlm' : 'causal-lm';
}

/** Zoo models with every `pretrain.from` parent before its child; a cycle is an error naming it. */
export function zooOrder(config: ExperimentConfig, file: string): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting')
      throw new TlabError(
        `${file}: models.${name}.pretrain.from: a cycle: ${[...path.slice(path.indexOf(name)), name].join(' → ')}`,
      );
    state.set(name, 'visiting');
    const from = config.models[name].pretrain?.from;
    if (from) {
      if (!config.models[from])
        throw new TlabError(
          `${file}: models.${name}.pretrain.from: '${from}' is not a zoo model; valid: ${Object.keys(config.models).join(', ')}`,
        );
      visit(from, [...path, name]);
    }
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(config.models)) visit(name, []);
  return order;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

/** The classification objective a zoo model is fine-tuned with, or null (language models and others). */
function classifierObjectiveOf(kind: ModelKindGuess): 'image-classifier' | 'sequence-classifier' | null {
  if (kind === 'image-classifier' || kind === 'vision-encoder') return 'image-classifier';
  return kind === 'sequence-classifier' ? 'sequence-classifier' : null;
}

/** Why a classifier cannot train on a task (no labels, or the other modality), or null when it can. */
function classifierMisfit(
  objective: 'image-classifier' | 'sequence-classifier',
  task: { images: boolean; labels: boolean },
): string | null {
  if (!task.labels) return 'a classifier trains on labels and the task has none (label_column)';
  if (objective === 'image-classifier' && !task.images)
    return 'an image classifier needs images, the task has none';
  if (objective === 'sequence-classifier' && task.images)
    return 'the task has images and a sequence classifier reads text';
  return null;
}

/** Whether a zoo model can read a task's examples for features (image models need images, text models text). */
function readsTask(kind: ModelKindGuess, images: boolean): boolean {
  if (kind === 'image-classifier' || kind === 'vision-encoder') return images;
  return kind === 'causal-lm' || kind === 'sequence-classifier' ? !images : true;
}

/**
 * Canonical JSON (keys sorted at every level, as data/canonical-json.ts) with the text of each object memoised by
 * identity: runs share big sub-objects (the eval grid's task list, training settings), so a 10,000-run plan sorts
 * each of them once instead of once per run.
 */
class CanonicalText {
  private readonly memo = new WeakMap<object, string>();

  of(value: unknown): string {
    if (value === null || typeof value !== 'object')
      return value === undefined ? 'null' : JSON.stringify(value);
    const hit = this.memo.get(value);
    if (hit !== undefined) return hit;
    const text = Array.isArray(value)
      ? `[${value.map((v) => (v === undefined ? 'null' : this.of(v))).join(',')}]`
      : `{${Object.keys(value)
          .sort()
          .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${this.of((value as Record<string, unknown>)[k])}`)
          .join(',')}}`;
    this.memo.set(value, text);
    return text;
  }
}

/** Builds runs with content-addressed ids (see the module comment). */
class PlanBuilder {
  readonly runs: PlannedRun[] = [];
  private readonly byName = new Map<string, PlannedRun>();
  private readonly canonical = new CanonicalText();

  add(
    stage: Stage,
    name: string,
    params: Record<string, ParamValue>,
    config: Record<string, unknown>,
    deps: readonly PlannedRun[],
    outputs: string[],
    inputs: Record<string, unknown> = {},
  ): PlannedRun {
    const key = `${stage}:${name}`;
    if (this.byName.has(key)) throw new Error(`unreachable: two ${stage} runs named ${name}`);
    const depIds = [...new Set(deps.map((d) => d.id))].sort();
    const c = this.canonical;
    const text = `{"config":${c.of(config)},"deps":${JSON.stringify(depIds)},"inputs":${c.of(inputs)},"stage":${JSON.stringify(stage)},"v":${LAB_VERSION}}`;
    const id = sha256Hex(text).slice(0, 16);
    const run: PlannedRun = { id, stage, name, params, config, deps: depIds, outputs };
    this.byName.set(key, run);
    this.runs.push(run);
    return run;
  }

  get(stage: Stage, name: string): PlannedRun | undefined {
    return this.byName.get(`${stage}:${name}`);
  }
}

export interface PlanOptions {
  /** The experiment folder (default from the config). */
  out?: string;
  /** Reuse fingerprints of unchanged files across plans (default: the experiment's .hash-cache.json; the caller saves it). */
  hashes?: HashCache;
}

interface ZooEntry {
  name: string;
  kind: ModelKindGuess;
  /** Folder relative to the experiment (zoo/<m>) or absolute (a given path). */
  dir: string;
  /** The run that produces it, or null for a given folder. */
  run: PlannedRun | null;
  /** For a given folder: its content fingerprint. */
  fingerprint: string | null;
}

/** The plan of an experiment (see the module comment). */
export async function planExperiment(loaded: LoadedExperiment, options: PlanOptions = {}): Promise<Plan> {
  const { config, file, baseDir } = loaded;
  const notes = [...loaded.notes];
  const out = options.out ? resolve(options.out) : experimentDir(config);
  const hashes = options.hashes ?? new HashCache(join(out, '.hash-cache.json'));
  const b = new PlanBuilder();
  const taskNames = Object.keys(config.tasks);
  const checkTask = (t: string, where: string) => {
    if (!config.tasks[t])
      throw new TlabError(
        `${file}: ${where}: '${t}' is not a task of this experiment; valid: ${taskNames.join(', ')}`,
      );
  };
  const traits = new Map(
    taskNames.map((t) => [t, taskTraits(config.tasks[t], { file, path: ['tasks', t] })]),
  );

  // Data.
  for (const t of taskNames)
    b.add('data', t, { task: t }, { task: t, spec: config.tasks[t] }, [], [`formatted_datasets/${t}`]);
  const dataRun = (t: string) => b.get('data', t)!;

  // Shared tokenizers.
  const tokenizerRef = async (
    spec: string | TokenizerSpec | undefined,
    where: string,
  ): Promise<{ ref: Record<string, unknown>; deps: PlannedRun[]; inputs: unknown }> => {
    if (typeof spec === 'string') {
      const run = b.get('tokenizer', spec);
      const given = config.tokenizers?.[spec];
      if (!given)
        throw new TlabError(
          `${file}: ${where}: no tokenizer '${spec}' under tokenizers; valid: ${Object.keys(config.tokenizers ?? {}).join(', ') || '(none)'}`,
        );
      if (run) return { ref: { dir: `tokenizers/${spec}` }, deps: [run], inputs: null };
      return tokenizerRef(given, `tokenizers.${spec}`);
    }
    if (!spec || spec.build) return { ref: { build: spec?.build ?? 'word' }, deps: [], inputs: null };
    const dir = resolve(baseDir, spec.path!);
    return { ref: { dir }, deps: [], inputs: await folderFingerprint(dir, hashes) };
  };
  for (const [name, spec] of Object.entries(config.tokenizers ?? {})) {
    if (!spec.build || !spec.from_tasks) continue;
    for (const t of spec.from_tasks) checkTask(t, `tokenizers.${name}.from_tasks`);
    b.add(
      'tokenizer',
      name,
      { tokenizer: name, build: spec.build },
      { name, build: spec.build, from_tasks: spec.from_tasks },
      spec.from_tasks.map(dataRun),
      [`tokenizers/${name}`],
    );
  }

  // The zoo.
  const zoo = new Map<string, ZooEntry>();
  for (const name of zooOrder(config, file)) {
    const m = config.models[name];
    const where = `models.${name}`;
    const kind = kindOfZooModel(m, baseDir, `${file}: ${where}`, config);
    if (m.path) {
      const dir = resolve(baseDir, m.path);
      zoo.set(name, { name, kind, dir, run: null, fingerprint: await folderFingerprint(dir, hashes) });
      continue;
    }
    const p = m.pretrain!;
    checkTask(p.task, `${where}.pretrain.task`);
    const parent = p.from ? zoo.get(p.from)! : null;
    const tok =
      p.objective !== 'image-classifier' && !parent
        ? await tokenizerRef(p.tokenizer, `${where}.pretrain.tokenizer`)
        : null;
    const run = b.add(
      'pretrain',
      name,
      {
        model: name,
        task: p.task,
        objective: p.objective,
        model_type: String(p.config?.model_type ?? (parent ? `from ${p.from}` : '')),
      },
      {
        model: name,
        task: p.task,
        objective: p.objective,
        config: p.config ?? null,
        from: parent?.dir ?? null,
        seq_len: p.seq_len ?? null,
        training: p.training,
        seed: p.seed ?? config.seed,
        tokenizer: tok?.ref ?? null,
      },
      [dataRun(p.task), ...(tok?.deps ?? []), ...(parent?.run ? [parent.run] : [])],
      [`zoo/${name}`, `zoo_logs/${name}`, `checkpoints/zoo-${name}`],
      { tokenizer: tok?.inputs ?? null, parent: parent?.fingerprint ?? null },
    );
    zoo.set(name, { name, kind, dir: `zoo/${name}`, run, fingerprint: null });
  }

  // Fine-tuning.
  const ft = config.finetuning;
  const finetuned: { run: PlannedRun; model: string; task: string; strategy: string }[] = [];
  if (ft) {
    const tasks =
      ft.tasks ??
      taskNames.filter((t) => traits.get(t)!.splits === null || traits.get(t)!.splits!.includes('train'));
    for (const t of ft.tasks ?? []) checkTask(t, 'finetuning.tasks');
    for (const c of Object.keys(ft.learning_rates ?? {}))
      if (!ALL_COMPONENTS.includes(COMPONENT_ALIASES[c] ?? c))
        throw new TlabError(
          `${file}: finetuning.learning_rates.${c}: no such component${didYouMean(c, [...ALL_COMPONENTS, ...Object.keys(COMPONENT_ALIASES)])}; valid: ${validChoices([...ALL_COMPONENTS, ...Object.keys(COMPONENT_ALIASES)])}`,
        );
    for (const [m, entry] of Object.entries(config.models))
      for (const t of entry.finetune_on ?? []) checkTask(t, `models.${m}.finetune_on`);
    for (const m of ft.models ?? [])
      if (!zoo.has(m))
        throw new TlabError(
          `${file}: finetuning.models: '${m}' is not a zoo model; valid: ${[...zoo.keys()].join(', ')}`,
        );
    const flags = COMPONENT_FLAGS.filter((f) => ft[f] === true);
    const ranks = ft.lora_ranks ?? [];
    const strategies = ft.strategies ?? (ranks.length || flags.length ? [] : ['full']);
    if (strategies.includes('lora') && ranks.length === 0)
      throw new TlabError(`${file}: finetuning.lora_ranks: strategy 'lora' needs at least one rank`);
    const training = { ...(ft.training ?? {}) } as Record<string, unknown>;
    if (ft.epochs !== undefined && training.epochs === undefined && training.max_steps === undefined)
      training.epochs = ft.epochs;
    if (ft.batch_size !== undefined && training.batch_size === undefined) training.batch_size = ft.batch_size;
    if (training.max_steps === undefined && training.epochs === undefined)
      throw new TlabError(`${file}: finetuning.training: give max_steps or epochs`);
    const variants: {
      tag: string;
      strategy: Record<string, unknown>;
      vlmOnly: boolean;
      lora_rank: number | null;
    }[] = [];
    if (strategies.includes('full'))
      variants.push({ tag: 'full', strategy: { kind: 'full' }, vlmOnly: false, lora_rank: null });
    for (const r of ranks)
      variants.push({
        tag: `lora-r${r}`,
        strategy: {
          kind: 'lora',
          lora: {
            r,
            alpha: ft.lora?.alpha ?? 2 * r,
            dropout: ft.lora?.dropout ?? 0,
            rs_lora: ft.lora?.rs_lora ?? false,
            targets: ft.lora?.targets ?? null,
          },
        },
        vlmOnly: false,
        lora_rank: r,
      });
    for (const f of flags) {
      // Every component set explicitly: the flag trains the projector and the parts it names, and nothing else.
      const parts = f.split('+');
      variants.push({
        tag: `comp-${f.replace(/\+/g, '-')}`,
        strategy: {
          kind: 'components',
          components: {
            projector: 'full',
            encoder: parts.includes('encoder') ? 'full' : 'frozen',
            decoder: parts.includes('decoder') ? 'full' : 'frozen',
          },
        },
        vlmOnly: true,
        lora_rank: null,
      });
    }
    const seeds = ft.seeds ?? [config.seed];
    const models = ft.models ?? [...zoo.keys()];
    // models.<m>.finetune_training over finetuning.training, validated as a whole (steps or epochs from one side).
    const trainingMemo = new Map<string, Record<string, unknown>>();
    const trainingOf = (m: string): Record<string, unknown> => {
      const over = config.models[m]?.finetune_training;
      if (!over) return training;
      const hit = trainingMemo.get(m);
      if (hit) return hit;
      const merged = { ...training, ...over };
      if ('epochs' in over && !('max_steps' in over)) delete merged.max_steps;
      if ('max_steps' in over && !('epochs' in over)) delete merged.epochs;
      const parsed = LabTrainingSchema.safeParse(merged);
      if (!parsed.success) throw zodIssuesError(file, ['models', m, 'finetune_training'], parsed.error);
      trainingMemo.set(m, parsed.data as Record<string, unknown>);
      return parsed.data as Record<string, unknown>;
    };
    const textOnly = new Map<string, string[]>();
    for (const m of models) {
      const z = zoo.get(m)!;
      for (const t of config.models[m]?.finetune_on ?? tasks) {
        const tr = traits.get(t)!;
        // Classifiers (and vision encoders, given a head) train on a task's labels, read as images or as text.
        const objective = classifierObjectiveOf(z.kind);
        const misfit = objective ? classifierMisfit(objective, tr) : null;
        if (misfit || (!objective && z.kind !== 'causal-lm' && z.kind !== 'vlm')) {
          notes.push(
            `finetuning: ${m} × ${t} left out: ${misfit ?? `${m} is a ${z.kind}, which is not fine-tuned`}`,
          );
          continue;
        }
        if (!objective && tr.images && z.kind !== 'vlm') {
          textOnly.set(t, [...(textOnly.get(t) ?? []), m]);
          continue;
        }
        for (const v of variants) {
          if (v.vlmOnly && z.kind !== 'vlm') continue;
          for (const seed of seeds) {
            const name = `${m}__${t}__${v.tag}__s${seed}`;
            const run = b.add(
              'finetune',
              name,
              {
                model: m,
                task: t,
                strategy: v.tag,
                lora_rank: v.lora_rank,
                seed,
                lr: (trainingOf(m).lr as number | undefined) ?? null,
              },
              {
                model: m,
                from: z.dir,
                task: t,
                strategy: v.strategy,
                training: trainingOf(m),
                learning_rates: learningRatesFor(ft.learning_rates, z.kind),
                seq_len: ft.seq_len ?? null,
                seed,
                allow_unknown_tokens: ft.allow_unknown_tokens ?? false,
                ...(objective ? { objective } : {}),
                ...externalFor(ft, m, file, zoo.keys(), baseDir),
              },
              [dataRun(t), ...(z.run ? [z.run] : [])],
              [`finetuned_checkpoints/${name}`, `finetune_logs/${name}`, `checkpoints/${name}`],
              { model: z.fingerprint },
            );
            finetuned.push({ run, model: m, task: t, strategy: v.tag });
          }
        }
      }
    }
    for (const [t, ms] of textOnly)
      notes.push(
        `finetuning: ${ms.length} text-only model(s) left out on ${t} (its prompts have images): ${ms.join(', ')}`,
      );
    if (finetuned.length === 0) notes.push('finetuning: no run fits (see the notes above)');
  }

  // The eval grid: one run per evaluated model.
  const ev = config.evals ?? {};
  const evalTasks =
    ev.tasks ??
    taskNames.filter((t) => {
      const s = traits.get(t)!.splits;
      return s === null || s.includes('test') || s.includes('validation');
    });
  for (const t of ev.tasks ?? []) checkTask(t, 'evals.tasks');
  for (const [t, grader] of Object.entries(ev.graders ?? {})) {
    checkTask(t, 'evals.graders');
    createGrader(grader, ev.grader_options?.[t] ?? {}, `${file}: evals.graders.${t}`);
  }
  const gridTasks = evalTasks.map((t) => ({
    name: t,
    path: `formatted_datasets/${t}`,
    ...(ev.graders?.[t] ? { grader: ev.graders[t] } : {}),
    ...(ev.grader_options?.[t] ? { grader_options: ev.grader_options[t] } : {}),
  }));
  const gridSettings = {
    nb_eval_samples: ev.nb_eval_samples ?? null,
    checkpoint_to_eval: ev.checkpoint_to_eval ?? -1,
    inference: ev.inference ?? ev.inference_params ?? {},
    batch_size: ev.batch_size ?? 32,
    bootstrap: ev.bootstrap ?? 1000,
    seed: config.seed,
  };
  // evals.model_server: eval runs only (the summary rebuilds the grid from cells and serves nothing).
  const serverSettings = ev.model_server
    ? { model_server: ev.model_server, model_server_args: ev.model_server_args ?? {} }
    : {};
  const evalRuns: PlannedRun[] = [];
  if (evalTasks.length > 0) {
    const evalModel = (
      name: string,
      entry: {
        dir: string;
        role: 'base' | 'finetuned';
        base: string | null;
        train_task: string | null;
        strategy: string | null;
      },
      deps: PlannedRun[],
      inputs: unknown,
    ) =>
      evalRuns.push(
        b.add(
          'eval',
          name,
          {
            model: name,
            role: entry.role,
            base: entry.base,
            train_task: entry.train_task,
            strategy: entry.strategy,
          },
          {
            model: {
              name,
              path: entry.dir,
              ...(entry.base ? { base: entry.base } : {}),
              ...(entry.train_task ? { train_task: entry.train_task } : {}),
              ...(entry.strategy ? { strategy: entry.strategy } : {}),
            },
            tasks: gridTasks,
            ...gridSettings,
            ...serverSettings,
          },
          [...deps, ...evalTasks.map(dataRun)],
          [`cells/${name}`, `grader_logs/${name}`, `failures/${name}`],
          { model: inputs },
        ),
      );
    if (ev.zero_shot ?? true)
      for (const z of zoo.values()) {
        if (z.kind === 'vision-encoder' || z.kind === 'other') continue;
        evalModel(
          z.name,
          { dir: z.dir, role: 'base', base: null, train_task: null, strategy: null },
          z.run ? [z.run] : [],
          z.fingerprint,
        );
      }
    const zeroShot = ev.zero_shot ?? true;
    for (const f of finetuned)
      evalModel(
        f.run.name,
        {
          dir: `finetuned_checkpoints/${f.run.name}`,
          role: 'finetuned',
          base: zeroShot ? f.model : null,
          train_task: f.task,
          strategy: f.strategy,
        },
        [f.run],
        null,
      );
  }

  // Transferability estimators: features of every (zoo model, target task), then the scores.
  const metricsRuns: PlannedRun[] = [];
  const mc = config.metrics;
  if (mc) {
    const targets = mc.target_tasks ?? ft?.tasks ?? [...new Set(finetuned.map((f) => f.task))];
    for (const t of mc.target_tasks ?? []) checkTask(t, 'metrics.target_tasks');
    for (const m of mc.models ?? [])
      if (!zoo.has(m))
        throw new TlabError(
          `${file}: metrics.models: '${m}' is not a zoo model; valid: ${[...zoo.keys()].join(', ')}`,
        );
    mc.estimators.forEach((e, i) => {
      const name = typeof e === 'string' ? e : e.name;
      if (!METRICS[name])
        throw new TlabError(
          `${file}: metrics.estimators.${i}: unknown estimator '${name}'${didYouMean(name, Object.keys(METRICS))}`,
          `estimators: ${Object.keys(METRICS).join(', ')}`,
        );
    });
    const features = mc.features ?? {};
    for (const t of targets) {
      if (!traits.get(t)!.labels) {
        notes.push(`metrics: ${t} has no labels (label_column), so estimators cannot score it`);
        continue;
      }
      const models =
        mc.models ?? [...zoo.keys()].filter((m) => readsTask(zoo.get(m)!.kind, traits.get(t)!.images));
      for (const m of models) {
        const z = zoo.get(m)!;
        const name = `${m}__${t}`;
        const fr = b.add(
          'features',
          name,
          { model: m, task: t, pooling: features.pooling ?? null, layer: features.layer ?? -1 },
          {
            model: m,
            model_dir: z.dir,
            task: t,
            pooling:
              features.pooling ??
              (z.kind === 'image-classifier' || z.kind === 'vision-encoder' ? 'pooled' : 'last'),
            layer: features.layer ?? -1,
            split: features.split ?? 'train',
            limit: features.limit ?? null,
            source_probs: features.source_probs ?? 'auto',
            top_k: features.top_k ?? null,
          },
          [dataRun(t), ...(z.run ? [z.run] : [])],
          [`features/${slug(m)}/${slug(t)}`],
          { model: z.fingerprint },
        );
        metricsRuns.push(
          b.add(
            'metrics',
            name,
            { model: m, task: t },
            {
              model: m,
              task: t,
              features: fr.outputs[0],
              estimators: mc.estimators,
              n_samples: mc.n_samples ?? ['all'],
              seeds: mc.seeds ?? [0],
            },
            [fr],
            [`metrics/results/${slug(m)}/${slug(t)}`],
          ),
        );
      }
    }
  }

  // The summary: rebuilt whenever anything it reads changed.
  const summaryDeps = [
    ...evalRuns,
    ...metricsRuns,
    ...finetuned.map((f) => f.run),
    ...[...zoo.values()].flatMap((z) => (z.run ? [z.run] : [])),
  ];
  if (summaryDeps.length)
    b.add(
      'summary',
      'summary',
      {},
      {
        eval_models: evalRuns.map((r) => r.name),
        tasks: evalTasks,
        metrics: metricsRuns.map((r) => r.name),
        actual_strategy: mc?.actual?.strategy ?? 'full',
        report: config.report ?? true,
      },
      summaryDeps,
      [
        'eval_grid.json',
        'eval_grid_results.json',
        'transfer.json',
        'results.csv',
        'results.parquet',
        'summary.json',
        'plots',
        'report',
      ],
    );

  return {
    schema: PLAN_SCHEMA,
    experiment: config.name,
    out,
    file,
    base_dir: baseDir,
    created_at: new Date().toISOString(),
    runs: b.runs,
    notes,
  };
}
