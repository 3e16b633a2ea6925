/**
 * One cell of the grid: a model's answers to a task's samples, graded. Generation graders send each sample's
 * prompt as a chat request; log-likelihood graders score every option as the continuation of the prompt. Batches
 * of finished samples are checkpointed (store.appendPartial), so an interrupted cell continues where it stopped.
 * A cell the model cannot answer (images for a text-only model, log-likelihood through a chat-only server) is
 * skipped with the reason; nothing is silently dropped.
 */
import { Rng } from '../../util/random.ts';
import type { Grader, RowGrade } from '../graders/index.ts';
import type { InferenceBackend, LoglikRequest } from '../inference/types.ts';
import type { ResolvedTask } from './config.ts';
import { type EvalSample, inferenceMessages, type TaskSamples } from './samples.ts';
import type { GraderLogRow, GridCell } from './schema.ts';
import type { GridStore } from './store.ts';

export interface CellContext {
  backend: InferenceBackend;
  model: string;
  task: ResolvedTask;
  samples: TaskSamples;
  grader: Grader;
  key: string;
  store: GridStore;
  batchSize: number;
  bootstrap: number;
  seed: number;
  /** Called with the number of samples just finished. */
  onSamples?: (n: number) => void;
}

/** Why the backend cannot answer this task, or null when it can. */
export function skipReason(backend: InferenceBackend, samples: TaskSamples, grader: Grader): string | null {
  const most = Math.max(0, ...samples.samples.map((s) => s.images.length));
  const { maxImages, loglik, minImages = 0 } = backend.capabilities;
  const fewest = Math.min(...samples.samples.map((s) => s.images.length));
  if (samples.samples.length > 0 && fewest < minImages)
    return `the task has prompts with ${fewest} image(s) and '${backend.model}' needs ${minImages} per request`;
  if (most > 0 && maxImages === 0)
    return `the task's prompts have images and '${backend.model}' is a text-only model`;
  if (most > maxImages)
    return `the task's prompts have up to ${most} images and '${backend.model}' takes ${maxImages} per request`;
  if (grader.needs === 'choice-loglik' && !loglik)
    return `the ${grader.name} grader scores options by log-likelihood, which '${backend.model}' cannot give (a chat-only server without the model's tokenizer)`;
  return null;
}

function logRow(
  sample: EvalSample,
  prediction: string,
  grade: RowGrade,
  extra: { latencyMs: number; promptTokens: number; completionTokens: number },
): GraderLogRow {
  return {
    uid: sample.uid,
    prompt: sample.prompt,
    prediction,
    reference: sample.reference,
    score: grade.score,
    details: grade.details,
    latency_ms: Math.round(extra.latencyMs * 1000) / 1000,
    prompt_tokens: extra.promptTokens,
    completion_tokens: extra.completionTokens,
    images: sample.images,
  };
}

async function generationRows(ctx: CellContext, batch: readonly EvalSample[]): Promise<GraderLogRow[]> {
  const requests = batch.map((s) => ({
    messages: inferenceMessages(s, ctx.task.dir),
    params: ctx.task.params,
  }));
  const answers = await ctx.backend.chat(requests);
  return batch.map((s, i) => {
    const a = answers[i];
    const grade = ctx.grader.gradeRow({
      prediction: a.text,
      reference: s.reference,
      choices: s.choices,
      gold: s.gold,
    });
    if (a.finishReason === 'length') grade.details = { ...grade.details, finish_reason: 'length' };
    return logRow(s, a.text, grade, a);
  });
}

async function choiceRows(ctx: CellContext, batch: readonly EvalSample[]): Promise<GraderLogRow[]> {
  const requests: LoglikRequest[] = [];
  for (const s of batch) {
    if (!s.choices) throw new Error(`unreachable: sample ${s.uid} has no options`);
    const messages = inferenceMessages(s, ctx.task.dir);
    for (const c of s.choices) requests.push({ messages, continuation: ctx.task.choiceDelimiter + c });
  }
  const t0 = performance.now();
  const scores = await ctx.backend.loglik(requests);
  const latencyMs = (performance.now() - t0) / batch.length;
  let k = 0;
  return batch.map((s) => {
    const choices = s.choices!;
    const choiceLoglik = choices.map((c) => {
      const r = scores[k++];
      return { logprob: r.logprob, chars: [...c].length, greedy: r.greedy };
    });
    const grade = ctx.grader.gradeRow({
      prediction: '',
      reference: s.reference,
      choices,
      choiceLoglik,
      gold: s.gold,
    });
    const best = choiceLoglik.reduce((b, x, i) => (x.logprob > choiceLoglik[b].logprob ? i : b), 0);
    const tokens = scores.slice(k - choices.length, k).reduce((n, r) => n + r.tokens, 0);
    return logRow(s, choices[best], grade, { latencyMs, promptTokens: 0, completionTokens: tokens });
  });
}

/** Percentile bootstrap of the topline over resampled rows (null below 2 rows or with 0 resamples). */
export function bootstrapTopline(
  grader: Grader,
  rows: readonly RowGrade[],
  topline: string,
  resamples: number,
  seed: number,
  level = 0.95,
): GridCell['ci'] {
  if (rows.length < 2 || resamples === 0) return null;
  const rng = new Rng(seed);
  const values: number[] = [];
  const pick: RowGrade[] = new Array(rows.length);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < rows.length; i++) pick[i] = rows[rng.int(rows.length)];
    const v = grader.aggregate(pick).metrics[topline];
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const at = (q: number) => values[Math.min(values.length - 1, Math.max(0, Math.floor(q * values.length)))];
  return { level, low: at((1 - level) / 2), high: at(1 - (1 - level) / 2), resamples };
}

/** Evaluates (or finishes) one cell and writes its log; the caller writes the returned cell. */
export async function evaluateCell(ctx: CellContext): Promise<GridCell> {
  const t0 = performance.now();
  const base = { model: ctx.model, task: ctx.task.name, key: ctx.key };
  const reason = skipReason(ctx.backend, ctx.samples, ctx.grader);
  if (reason) {
    return {
      ...base,
      status: 'skipped',
      topline_metric: null,
      score: null,
      metrics: {},
      ci: null,
      n: 0,
      reason,
      log: null,
      seconds: 0,
      finished_at: new Date().toISOString(),
    };
  }
  const earlier = ctx.store.readPartial(ctx.model, ctx.task.name, ctx.key);
  const done = new Map(earlier.map((r) => [r.uid, r]));
  if (earlier.length) ctx.onSamples?.(earlier.length);
  const todo = ctx.samples.samples.filter((s) => !done.has(s.uid));
  let fresh = earlier.length === 0;
  for (let start = 0; start < todo.length; start += ctx.batchSize) {
    const batch = todo.slice(start, start + ctx.batchSize);
    const rows =
      ctx.grader.needs === 'choice-loglik' ? await choiceRows(ctx, batch) : await generationRows(ctx, batch);
    ctx.store.appendPartial(ctx.model, ctx.task.name, ctx.key, rows, fresh);
    fresh = false;
    for (const r of rows) done.set(r.uid, r);
    ctx.onSamples?.(rows.length);
  }
  const rows = ctx.samples.samples.map((s) => done.get(s.uid)!);
  const grades: RowGrade[] = rows.map((r) => ({ score: r.score, details: r.details }));
  const aggregate = ctx.grader.aggregate(grades);
  const log = ctx.store.writeLog(ctx.model, ctx.task.name, rows);
  ctx.store.removePartial(ctx.model, ctx.task.name);
  return {
    ...base,
    status: 'done',
    topline_metric: aggregate.topline,
    score: aggregate.metrics[aggregate.topline],
    metrics: aggregate.metrics,
    ci: bootstrapTopline(ctx.grader, grades, aggregate.topline, ctx.bootstrap, ctx.seed),
    n: rows.length,
    log,
    seconds: (performance.now() - t0) / 1000,
    finished_at: new Date().toISOString(),
  };
}
