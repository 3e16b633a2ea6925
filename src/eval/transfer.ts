/**
 * The transfer matrix of an eval grid (rows: every model, columns: every eval task) and the relative-gain
 * transferability index, with paired percentile-bootstrap CIs over evaluation samples (docs/transfer-and-shift.md).
 *
 *   g_m(j)       = score_m(j) / max(score_base(j), floor) − 1
 *   index_m(i→j) = g_m(j) / g_m(i),  i = train_task(m); undefined when |g_m(i)| < minGain
 *
 * Every model is evaluated on the same uids of a task, so one bootstrap resample draws the uids of each task once
 * and every model's score on that task is recomputed from the same draw (paired). Cells that were skipped or failed
 * are excluded with their reason; they never enter as scores (the llama-cookbook pivots its −1 error rows in).
 */
import { mulberry32 } from '../metrics/rng.ts';
import { TlabError } from '../util/errors.ts';
import { hashSeed } from '../util/random.ts';
import type { CellStatus, EvalGrid, GridCell, GridModel, GridTask } from './grid/schema.ts';

export const TRANSFER_SCHEMA = 'transferlab-transfer/1';

export type ScoreSource = 'topline' | 'sample-mean';

export interface TransferSettings {
  /** Lower bound of the base score in the relative gain's denominator (the cookbook's 0.01). */
  floor: number;
  /** |g_m(i)| below this makes the index undefined (the in-task gain is too small to divide by). */
  minGain: number;
  /** Bootstrap resamples (0: no CIs). */
  resamples: number;
  /** Confidence level of the percentile intervals. */
  level: number;
  seed: number;
  /** A cell's score: the grader's topline metric, or the mean of its per-sample scores. */
  score: ScoreSource;
}

export const DEFAULT_TRANSFER_SETTINGS: TransferSettings = {
  floor: 0.01,
  minGain: 0.05,
  resamples: 1000,
  level: 0.95,
  seed: 0,
  score: 'topline',
};

/** Per-sample scores of one grid cell, from its grader log. */
export interface SampleScores {
  uids: string[];
  scores: Float64Array;
  /** Where they were read (named in messages). */
  source: string;
}

export interface TransferInput {
  grid: EvalGrid;
  /** By cellKey(model, task); a done cell without an entry gets no CIs. */
  samples: Map<string, SampleScores>;
  /** Why a cell has no samples (e.g. its log is missing), by cellKey. */
  missingSamples?: Map<string, string>;
}

/** A point estimate with its percentile CI; value null (with the reason) when undefined. */
export interface Statistic {
  value: number | null;
  low: number | null;
  high: number | null;
  /** Why the value or the interval is missing. */
  reason?: string;
  /** Resamples in which the statistic was undefined (index only); the interval is over the others. */
  undefined_resamples?: number;
}

export type TransferCellStatus = CellStatus | 'missing';

export interface TransferCell {
  model: string;
  task: string;
  status: TransferCellStatus;
  /** Why a cell is not done (skip reason, error first line, or 'no cell in the grid'). */
  reason?: string;
  n: number;
  topline_metric: string | null;
  score: Statistic;
  base_model: string | null;
  delta_vs_base: Statistic;
  /** The fine-tuned model of the same base (and strategy) trained on this cell's task. */
  in_task_model: string | null;
  delta_vs_in_task: Statistic;
  relative_gain: Statistic;
  /** The model's train task i (the index is index(i→task)). */
  train_task: string | null;
  in_task_relative_gain: Statistic;
  transfer_index: Statistic;
}

export interface TransferMatrix {
  models: string[];
  tasks: string[];
  score: (number | null)[][];
  delta_vs_base: (number | null)[][];
  delta_vs_in_task: (number | null)[][];
  relative_gain: (number | null)[][];
  transfer_index: (number | null)[][];
}

export interface TransferResult {
  schema: typeof TRANSFER_SCHEMA;
  created_at: string;
  grid_updated_at: string;
  settings: {
    floor: number;
    min_gain: number;
    resamples: number;
    level: number;
    seed: number;
    score: ScoreSource;
  };
  tasks: { name: string; grader: string; n: number; uids_sha256: string; bootstrap_samples: number }[];
  models: GridModel[];
  cells: TransferCell[];
  matrix: TransferMatrix;
  excluded: { model: string; task: string; status: TransferCellStatus; reason: string }[];
  warnings: string[];
}

export function cellKey(model: string, task: string): string {
  return `${model}\u0000${task}`;
}

export function checkTransferSettings(s: TransferSettings): void {
  if (!(s.floor > 0) || !Number.isFinite(s.floor))
    throw new TlabError(`transfer: floor=${s.floor} must be a finite number > 0`);
  if (!(s.minGain >= 0) || !Number.isFinite(s.minGain))
    throw new TlabError(`transfer: min_gain=${s.minGain} must be a finite number ≥ 0`);
  if (!Number.isInteger(s.resamples) || s.resamples < 0)
    throw new TlabError(`transfer: resamples=${s.resamples} must be an integer ≥ 0`);
  if (!(s.level > 0 && s.level < 1)) throw new TlabError(`transfer: level=${s.level} must be in (0, 1)`);
  if (!Number.isInteger(s.seed)) throw new TlabError(`transfer: seed=${s.seed} must be an integer`);
  if (s.score !== 'topline' && s.score !== 'sample-mean')
    throw new TlabError(`transfer: score='${s.score}' must be one of topline, sample-mean`);
}

/** Quantile with linear interpolation between order statistics (numpy's default), of sorted values. */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = p * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** A usable cell: done, with its point score and (when the bootstrap can use them) aligned per-sample scores. */
interface Usable {
  cell: GridCell;
  score: number;
  /** Per-sample scores in the task's reference uid order, or null with `noCi` saying why. */
  aligned: Float64Array | null;
  noCi?: string;
}

interface TaskUids {
  uids: string[];
  index: Map<string, number>;
}

const undef = (reason: string): Statistic => ({ value: null, low: null, high: null, reason });

/** The transfer matrix, relative gains and indices of a grid; `onResample` reports bootstrap progress. */
export function computeTransfer(
  input: TransferInput,
  options: Partial<TransferSettings> = {},
  onResample?: (done: number, total: number) => void,
): TransferResult {
  const settings = { ...DEFAULT_TRANSFER_SETTINGS, ...options };
  checkTransferSettings(settings);
  const { grid } = input;
  const warnings: string[] = [];
  const models = grid.models;
  const tasks = grid.tasks;
  const modelByName = new Map(models.map((m) => [m.name, m]));
  const cells = new Map<string, GridCell>();
  for (const c of grid.cells) cells.set(cellKey(c.model, c.task), c);

  // 1. usable cells and each task's reference uids
  const usable = new Map<string, Usable>();
  const excludedReason = new Map<string, string>();
  const taskUids = new Map<string, TaskUids>();
  for (const task of tasks) {
    const done: Usable[] = [];
    for (const m of models) {
      const key = cellKey(m.name, task.name);
      const cell = cells.get(key);
      if (!cell) {
        excludedReason.set(key, 'no cell in the grid');
        continue;
      }
      if (cell.status !== 'done') {
        excludedReason.set(key, cell.reason ?? firstLine(cell.error) ?? `status ${cell.status}`);
        continue;
      }
      const samples = input.samples.get(key);
      if (settings.score === 'sample-mean' && !samples) {
        excludedReason.set(
          key,
          `no per-sample scores (${input.missingSamples?.get(key) ?? 'no grader log'}); --score sample-mean needs them`,
        );
        continue;
      }
      const score = settings.score === 'sample-mean' ? mean(samples!.scores) : cell.score;
      if (score === null || !Number.isFinite(score)) {
        excludedReason.set(key, `done but its score is ${score}`);
        continue;
      }
      done.push({ cell, score, aligned: null });
    }
    const ref = referenceUids(task, done, input.samples, warnings);
    if (ref) taskUids.set(task.name, ref);
    for (const u of done) {
      const key = cellKey(u.cell.model, task.name);
      const samples = input.samples.get(key);
      if (!samples) u.noCi = input.missingSamples?.get(key) ?? 'no grader log for this cell';
      else if (!ref) u.noCi = `task ${task.name} has no reference uid list`;
      else {
        const aligned = alignSamples(samples, ref);
        if (typeof aligned === 'string') {
          excludedReason.set(key, aligned);
          continue;
        }
        u.aligned = aligned;
        const sampleMean = mean(aligned);
        if (Math.abs(sampleMean - u.score) > 1e-9 * Math.max(1, Math.abs(u.score))) {
          u.aligned = null;
          u.noCi = `the topline metric ${u.cell.topline_metric} (${u.score}) is not the mean of the per-sample scores (${sampleMean}); use --score sample-mean for intervals`;
        }
      }
      usable.set(key, u);
    }
  }

  // 2. the paired bootstrap: resampled scores of every usable cell with aligned samples
  const R = settings.resamples;
  const boot = new Map<string, Float64Array>();
  for (const [key, u] of usable) if (u.aligned) boot.set(key, new Float64Array(R));
  const perTask = tasks.map((t) => ({
    task: t,
    ref: taskUids.get(t.name),
    cells: [...usable.entries()]
      .filter(([, u]) => u.aligned && u.cell.task === t.name)
      .map(([k, u]) => ({ out: boot.get(k)!, s: u.aligned! })),
  }));
  const rngs = perTask.map((t) => mulberry32(hashSeed(settings.seed, 'transfer-bootstrap', t.task.name)));
  const draw = new Int32Array(Math.max(0, ...perTask.map((t) => t.ref?.uids.length ?? 0)));
  for (let r = 0; r < R; r++) {
    perTask.forEach((t, ti) => {
      const n = t.ref?.uids.length ?? 0;
      if (n === 0 || t.cells.length === 0) return;
      const rng = rngs[ti];
      for (let k = 0; k < n; k++) draw[k] = Math.floor(rng() * n);
      for (const c of t.cells) {
        let s = 0;
        for (let k = 0; k < n; k++) s += c.s[draw[k]];
        c.out[r] = s / n;
      }
    });
    onResample?.(r + 1, R);
  }

  // 3. statistics per (model, task)
  const level = settings.level;
  /** A statistic from point inputs and their resampled versions; f returns NaN where undefined. */
  const stat = (
    keys: string[],
    f: (v: number[]) => number,
    undefinedReason?: (v: number[]) => string | null,
  ): Statistic => {
    const point = keys.map((k) => usable.get(k)!.score);
    const why = undefinedReason?.(point);
    if (why) return undef(why);
    const value = f(point);
    if (R === 0) return { value, low: null, high: null, reason: 'no bootstrap (resamples = 0)' };
    const missing = keys.map((k) => usable.get(k)!).find((u) => !u.aligned);
    if (missing)
      return {
        value,
        low: null,
        high: null,
        reason: `no interval: ${missing.cell.model} on ${missing.cell.task}: ${missing.noCi}`,
      };
    const series = keys.map((k) => boot.get(k)!);
    const values: number[] = [];
    let undefinedCount = 0;
    const v = new Array<number>(keys.length);
    for (let r = 0; r < R; r++) {
      for (let i = 0; i < keys.length; i++) v[i] = series[i][r];
      const x = f(v);
      if (Number.isFinite(x)) values.push(x);
      else undefinedCount++;
    }
    values.sort((a, b) => a - b);
    const out: Statistic = {
      value,
      low: values.length ? quantileSorted(values, (1 - level) / 2) : null,
      high: values.length ? quantileSorted(values, (1 + level) / 2) : null,
    };
    if (undefinedReason) out.undefined_resamples = undefinedCount;
    if (!values.length) out.reason = 'undefined in every resample';
    return out;
  };

  const { floor, minGain } = settings;
  const gain = (s: number, b: number) => s / Math.max(b, floor) - 1;
  const out: TransferCell[] = [];
  const excluded: TransferResult['excluded'] = [];
  for (const m of models) {
    for (const task of tasks) {
      const key = cellKey(m.name, task.name);
      const cell = cells.get(key);
      const u = usable.get(key);
      const tc: TransferCell = {
        model: m.name,
        task: task.name,
        status: cell ? cell.status : 'missing',
        n: cell?.n ?? 0,
        topline_metric: cell?.topline_metric ?? null,
        score: undef(''),
        base_model: m.role === 'finetuned' ? m.base : null,
        delta_vs_base: undef(''),
        in_task_model: null,
        delta_vs_in_task: undef(''),
        relative_gain: undef(''),
        train_task: m.role === 'finetuned' ? m.train_task : null,
        in_task_relative_gain: undef(''),
        transfer_index: undef(''),
      };
      const inTask = inTaskModel(m, task, models);
      if (typeof inTask !== 'string') tc.in_task_model = inTask.name;
      if (!u) {
        const reason = excludedReason.get(key) ?? 'excluded';
        tc.reason = reason;
        excluded.push({ model: m.name, task: task.name, status: tc.status, reason });
        for (const f of [
          'score',
          'delta_vs_base',
          'delta_vs_in_task',
          'relative_gain',
          'transfer_index',
        ] as const)
          tc[f] = undef(`cell not usable: ${reason}`);
        tc.in_task_relative_gain = undef(`cell not usable: ${reason}`);
        out.push(tc);
        continue;
      }
      tc.score = stat([key], (v) => v[0]);
      // delta vs base, relative gain
      const needUsable = (model: string, t: string, what: string): string | null => {
        const k = cellKey(model, t);
        if (usable.has(k)) return null;
        return `${what} cell (${model}, ${t}) is not usable: ${excludedReason.get(k) ?? 'excluded'}`;
      };
      if (m.role === 'base') {
        const reason = 'base model';
        tc.delta_vs_base = undef(reason);
        tc.relative_gain = undef(reason);
        tc.in_task_relative_gain = undef(reason);
        tc.transfer_index = undef(`${reason} (no train task)`);
      } else if (m.base === null || !modelByName.has(m.base)) {
        const reason =
          m.base === null ? 'the base model is not in the grid' : `base model ${m.base} is not in the grid`;
        tc.delta_vs_base = undef(reason);
        tc.relative_gain = undef(reason);
        tc.in_task_relative_gain = undef(reason);
        tc.transfer_index = undef(reason);
      } else {
        const bKey = cellKey(m.base, task.name);
        const bad = needUsable(m.base, task.name, 'base');
        if (bad) {
          tc.delta_vs_base = undef(bad);
          tc.relative_gain = undef(bad);
        } else {
          tc.delta_vs_base = stat([key, bKey], (v) => v[0] - v[1]);
          tc.relative_gain = stat([key, bKey], (v) => gain(v[0], v[1]));
        }
        // the index i → j
        const i = m.train_task;
        if (i === null || !tasks.some((t) => t.name === i)) {
          const reason =
            i === null ? 'no train task recorded' : `train task ${i} is not an eval task of the grid`;
          tc.in_task_relative_gain = undef(reason);
          tc.transfer_index = undef(reason);
        } else {
          const mi = cellKey(m.name, i);
          const bi = cellKey(m.base, i);
          const badI = needUsable(m.name, i, 'in-task') ?? needUsable(m.base, i, 'base in-task');
          if (badI) {
            tc.in_task_relative_gain = undef(badI);
            tc.transfer_index = undef(badI);
          } else if (bad) {
            tc.in_task_relative_gain = stat([mi, bi], (v) => gain(v[0], v[1]));
            tc.transfer_index = undef(bad);
          } else {
            tc.in_task_relative_gain = stat([mi, bi], (v) => gain(v[0], v[1]));
            tc.transfer_index = stat(
              [key, bKey, mi, bi],
              (v) => {
                const gi = gain(v[2], v[3]);
                return Math.abs(gi) < minGain ? Number.NaN : gain(v[0], v[1]) / gi;
              },
              (v) => {
                const gi = gain(v[2], v[3]);
                return Math.abs(gi) < minGain
                  ? `in-task relative gain g(${i}) = ${round(gi)} is within ±${minGain} of zero (min_gain)`
                  : null;
              },
            );
          }
        }
      }
      // delta vs the in-task fine-tuned model of the same base (and strategy)
      if (typeof inTask === 'string') tc.delta_vs_in_task = undef(inTask);
      else {
        const bad = needUsable(inTask.name, task.name, 'in-task model');
        tc.delta_vs_in_task = bad
          ? undef(bad)
          : stat([key, cellKey(inTask.name, task.name)], (v) => v[0] - v[1]);
      }
      out.push(tc);
    }
  }

  const byKey = new Map(out.map((c) => [cellKey(c.model, c.task), c]));
  const matrixOf = (f: (c: TransferCell) => Statistic) =>
    models.map((m) => tasks.map((t) => f(byKey.get(cellKey(m.name, t.name))!).value));
  return {
    schema: TRANSFER_SCHEMA,
    created_at: new Date().toISOString(),
    grid_updated_at: grid.updated_at,
    settings: {
      floor,
      min_gain: minGain,
      resamples: R,
      level,
      seed: settings.seed,
      score: settings.score,
    },
    tasks: tasks.map((t) => ({
      name: t.name,
      grader: t.grader,
      n: t.n,
      uids_sha256: t.uids_sha256,
      bootstrap_samples: taskUids.get(t.name)?.uids.length ?? 0,
    })),
    models,
    cells: out,
    matrix: {
      models: models.map((m) => m.name),
      tasks: tasks.map((t) => t.name),
      score: matrixOf((c) => c.score),
      delta_vs_base: matrixOf((c) => c.delta_vs_base),
      delta_vs_in_task: matrixOf((c) => c.delta_vs_in_task),
      relative_gain: matrixOf((c) => c.relative_gain),
      transfer_index: matrixOf((c) => c.transfer_index),
    },
    excluded,
    warnings,
  };
}

function round(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

function firstLine(s: string | undefined): string | undefined {
  return s === undefined ? undefined : s.split('\n', 1)[0];
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : Number.NaN;
}

/**
 * The uids a task's bootstrap draws from: those of the first done cell (in model order) whose log holds exactly the
 * task's n uids; the grid's uids_sha256 (of the uids newline-joined in evaluation order) is checked when the log is
 * in that order.
 */
function referenceUids(
  task: GridTask,
  done: Usable[],
  samples: Map<string, SampleScores>,
  warnings: string[],
): TaskUids | null {
  for (const u of done) {
    const s = samples.get(cellKey(u.cell.model, task.name));
    if (!s) continue;
    const index = new Map<string, number>();
    s.uids.forEach((uid, i) => {
      index.set(uid, i);
    });
    if (index.size !== s.uids.length) continue; // duplicates: reported by alignSamples
    if (s.uids.length !== task.n) {
      warnings.push(`${s.source}: ${s.uids.length} samples but task ${task.name} has n = ${task.n}`);
    }
    return { uids: s.uids, index };
  }
  return null;
}

/** A cell's per-sample scores in the reference order, or why they cannot be paired. */
function alignSamples(s: SampleScores, ref: TaskUids): Float64Array | string {
  if (s.uids.length !== ref.uids.length)
    return `${s.source}: ${s.uids.length} samples, but the task's other models have ${ref.uids.length}; the bootstrap pairs samples by uid`;
  const out = new Float64Array(ref.uids.length);
  const seen = new Uint8Array(ref.uids.length);
  for (let k = 0; k < s.uids.length; k++) {
    const at = ref.index.get(s.uids[k]);
    if (at === undefined) return `${s.source}: uid ${s.uids[k]} is not among the task's evaluated uids`;
    if (seen[at]) return `${s.source}: uid ${s.uids[k]} appears twice`;
    seen[at] = 1;
    out[at] = s.scores[k];
  }
  return out;
}

/**
 * The fine-tuned model trained on `task` that `m` is compared with: same base and strategy for a fine-tuned m (the
 * model itself on its own task), the only fine-tuned model of that base trained on the task for a base model.
 */
function inTaskModel(m: GridModel, task: GridTask, models: GridModel[]): GridModel | string {
  const base = m.role === 'base' ? m.name : m.base;
  const candidates = models.filter(
    (o) =>
      o.role === 'finetuned' &&
      o.base === base &&
      o.train_task === task.name &&
      (m.role === 'base' || o.strategy === m.strategy),
  );
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0)
    return m.role === 'base'
      ? `no model fine-tuned from ${m.name} on ${task.name}`
      : `no model fine-tuned from ${base ?? '(no base)'} with strategy ${m.strategy} on ${task.name}`;
  return `ambiguous: ${candidates.map((c) => c.name).join(', ')} are all fine-tuned from ${base} on ${task.name}${m.role === 'finetuned' ? ` with strategy ${m.strategy}` : ''}`;
}
