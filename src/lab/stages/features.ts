/**
 * Stages features and metrics: a zoo model's features of a target task (with labels) and its source-model
 * probabilities (source_probs.npy: a classifier's head softmax, a decoder's next-token distribution; none for a
 * vision encoder), then every estimator at every n_samples and seed on them (the metrics sweep, whose results are
 * keyed by content and reused). Estimators that need source probabilities are left out for a model without them.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeSafetensors } from '../../engine/io/safetensors.ts';
import type { SourceProbsMode } from '../../eval/source-probs.ts';
import { extractTaskFeatures, type FeaturePooling } from '../../eval/task-features.ts';
import { writeNpy } from '../../metrics/io/npy.ts';
import { METRICS } from '../../metrics/registry.ts';
import { runSweep, type SweepConfig } from '../../metrics/sweep.ts';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import {
  DEFAULT_UNKNOWN_TOKEN_THRESHOLD,
  unknownTokenProblem,
  warnUnknownTokens,
} from '../../train/unknown-tokens.ts';
import { inExperiment, runWhere, type StageContext, type StageResult } from './context.ts';

export async function runFeaturesStage(ctx: StageContext): Promise<StageResult> {
  const c = ctx.run.config as {
    model: string;
    model_dir: string;
    task: string;
    pooling: FeaturePooling;
    layer: number;
    split: string;
    limit: number | null;
    /** Absent in plans made before source probabilities (then auto). */
    source_probs?: SourceProbsMode;
    top_k?: number | null;
  };
  const folder = loadModelFolder(inExperiment(ctx, c.model_dir));
  const r = await extractTaskFeatures(folder, join(ctx.plan.out, 'formatted_datasets', c.task), {
    split: c.split,
    pooling: c.pooling,
    layer: c.layer,
    ...(c.limit ? { limit: c.limit } : {}),
    sourceProbs: { mode: c.source_probs ?? 'auto', ...(c.top_k ? { topK: c.top_k } : {}) },
  });
  // Into a fresh folder renamed into place: a reader never sees half a set.
  const dir = join(ctx.plan.out, ctx.run.outputs[0]);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeSafetensors(
    join(tmp, 'features.safetensors'),
    { features: r.features },
    { model: c.model, task: c.task },
  );
  writeNpy(join(tmp, 'labels.npy'), [r.labels.length], r.labels);
  const probs = r.sourceProbs;
  if (probs) writeNpy(join(tmp, 'source_probs.npy'), [probs.rows, probs.cols], probs.probs);
  const summary = {
    model: c.model,
    task: c.task,
    split: c.split,
    pooling: c.pooling,
    layer: c.layer,
    kind: r.kind,
    n: r.features.shape[0],
    d: r.features.shape[1],
    classes: r.classes,
    truncated: r.truncated,
    source_probs: probs
      ? { file: 'source_probs.npy', label_space: probs.labelSpace }
      : { file: null, reason: r.sourceProbsNote },
    unknown_tokens: r.unknownTokens,
  };
  const problem = r.unknownTokens && unknownTokenProblem(r.unknownTokens, DEFAULT_UNKNOWN_TOKEN_THRESHOLD);
  if (problem) warnUnknownTokens(`${runWhere(ctx)}: ${c.task} under ${c.model}'s tokenizer`, [problem]);
  writeFileSync(join(tmp, 'features.json'), `${JSON.stringify({ ...summary, uids: r.uids })}\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(tmp, dir);
  return summary;
}

export async function runMetricsStage(ctx: StageContext): Promise<StageResult> {
  const c = ctx.run.config as {
    model: string;
    task: string;
    features: string;
    estimators: SweepConfig['metrics'];
    n_samples: SweepConfig['n_samples'];
    seeds: number[];
  };
  const features = join(ctx.plan.out, c.features);
  const probs = join(features, 'source_probs.npy');
  const hasProbs = existsSync(probs);
  const name = (e: SweepConfig['metrics'][number]) => (typeof e === 'string' ? e : e.name);
  const needsProbs = (e: SweepConfig['metrics'][number]) => METRICS[name(e)]?.needs === 'sourceProbs';
  const skipped = hasProbs ? [] : c.estimators.filter(needsProbs).map(name);
  const estimators = hasProbs ? c.estimators : c.estimators.filter((e) => !needsProbs(e));
  if (estimators.length === 0)
    return { scores: 0, skipped, reason: `${c.model} has no source probabilities` };
  const results = await runSweep(
    {
      entries: [
        {
          model: c.model,
          task: c.task,
          features: join(features, 'features.safetensors'),
          labels: join(features, 'labels.npy'),
          ...(hasProbs ? { source_probs: probs } : {}),
        },
      ],
      metrics: estimators,
      n_samples: c.n_samples,
      seeds: c.seeds,
    },
    ctx.plan.out,
    // The sweep's own layout, metrics/<model>/<task>/..., is this run's output folder.
    { out: join(ctx.plan.out, 'metrics'), quiet: ctx.quiet },
  );
  return {
    scores: results.length,
    ...(skipped.length ? { skipped, reason: `${c.model} has no source probabilities` } : {}),
  };
}
