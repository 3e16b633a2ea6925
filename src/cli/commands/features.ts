/**
 * `tlab metrics features <model> <task>`: features of a built task's examples from a model folder, written as
 * features.safetensors (N×D) and labels.npy, and the source model's probabilities for LEEP/NCE as
 * source_probs.npy (N×Cs float64) with their label space in features.json, ready for `tlab metrics score` and
 * sweeps.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeSafetensors } from '../../engine/io/safetensors.ts';
import { DEFAULT_TOP_K, SOURCE_PROBS_MODES, type SourceProbsMode } from '../../eval/source-probs.ts';
import { extractTaskFeatures, type FeaturePooling, type FeatureSource } from '../../eval/task-features.ts';
import { writeNpy } from '../../metrics/io/npy.ts';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import {
  DEFAULT_UNKNOWN_TOKEN_THRESHOLD,
  unknownTokenProblem,
  warnUnknownTokens,
} from '../../train/unknown-tokens.ts';
import { writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { positiveInt, printJson } from '../options.ts';

const POOLINGS: FeaturePooling[] = ['last', 'mean', 'cls', 'pooled'];

interface FeatureFlags {
  out: string;
  split: string;
  pooling: FeaturePooling;
  layer: number;
  batchSize?: number;
  limit?: number;
  source?: string;
  sourceProbs: string;
  topK: number;
  unknownTokenThreshold: number;
  json?: boolean;
  quiet?: boolean;
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1))
    throw new TlabError(`--unknown-token-threshold: expected a share between 0 and 1, got '${value}'`);
  return n;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n))
    throw new TlabError(`--layer: expected an integer (negative counts from the end), got '${value}'`);
  return n;
}

export function registerFeaturesCommand(metrics: Command): void {
  metrics
    .command('features')
    .description("extract a model's features of a task's examples (for score/sweep)")
    .argument(
      '<model>',
      'model folder (decoder, VLM, sequence classifier, ViT/CLIP vision encoder or classifier)',
    )
    .argument('<task>', 'a task folder built by `tlab data build` (it must have labels)')
    .requiredOption(
      '-o, --out <dir>',
      'writes features.safetensors, labels.npy, source_probs.npy and features.json here',
    )
    .option('--split <name>', 'task split', 'train')
    .option(
      '--pooling <kind>',
      `${POOLINGS.join(' | ')} (text: last/mean/cls; images: pooled/cls/mean)`,
      'last',
    )
    .option('--layer <n>', 'hidden-state index (0 = embeddings, -1 = last)', integer, -1)
    .option('--batch-size <n>', 'examples per forward pass', positiveInt)
    .option('--limit <n>', 'first N examples only', positiveInt)
    .option(
      '--source <part>',
      "VLMs: 'decoder' (its states over the prompt with the images, default) or 'vision' (the vision tower's)",
    )
    .option(
      '--source-probs <space>',
      `source probabilities for LEEP/NCE: ${SOURCE_PROBS_MODES.join(' | ')} (auto: a classifier's head softmax; a decoder's next-token distribution over its vocabulary, or top-k above 4096 tokens; none for vision encoders)`,
      'auto',
    )
    .option('--top-k <n>', 'tokens in the top-k label space', positiveInt, DEFAULT_TOP_K)
    .option(
      '--unknown-token-threshold <share>',
      "warn when more of the split's tokens than this are the tokenizer's unknown token (or any answer token is)",
      share,
      DEFAULT_UNKNOWN_TOKEN_THRESHOLD,
    )
    .option('--json', 'print a JSON summary on stdout')
    .option('-q, --quiet', 'no progress or summary lines on stderr (warnings still)')
    .action(async (modelDir: string, taskDir: string, flags: FeatureFlags) => {
      if (!(SOURCE_PROBS_MODES as readonly string[]).includes(flags.sourceProbs))
        throw new TlabError(
          `--source-probs: '${flags.sourceProbs}' is not one of ${SOURCE_PROBS_MODES.join(', ')}`,
        );
      if (flags.topK < 2) throw new TlabError(`--top-k: expected at least 2, got ${flags.topK}`);
      if (!POOLINGS.includes(flags.pooling))
        throw new TlabError(`--pooling: '${flags.pooling}' is not one of ${POOLINGS.join(', ')}`);
      if (flags.source !== undefined && flags.source !== 'decoder' && flags.source !== 'vision')
        throw new TlabError(`--source: '${flags.source}' is not one of decoder, vision`);
      const folder = loadModelFolder(modelDir);
      const r = await extractTaskFeatures(folder, taskDir, {
        split: flags.split,
        pooling: flags.pooling,
        layer: flags.layer,
        batchSize: flags.batchSize,
        limit: flags.limit,
        source: flags.source as FeatureSource | undefined,
        sourceProbs: { mode: flags.sourceProbs as SourceProbsMode, topK: flags.topK },
      });
      writeSafetensors(
        join(flags.out, 'features.safetensors'),
        { features: r.features },
        { model: modelDir, task: taskDir },
      );
      writeNpy(join(flags.out, 'labels.npy'), [r.labels.length], r.labels);
      const probs = r.sourceProbs;
      if (probs) writeNpy(join(flags.out, 'source_probs.npy'), [probs.rows, probs.cols], probs.probs);
      else rmSync(join(flags.out, 'source_probs.npy'), { force: true });
      const summary = {
        model: modelDir,
        task: taskDir,
        split: flags.split,
        pooling: flags.pooling,
        layer: flags.layer,
        n: r.features.shape[0],
        truncated: r.truncated,
        kind: r.kind,
        d: r.features.shape[1],
        classes: r.classes,
        features: join(flags.out, 'features.safetensors'),
        labels: join(flags.out, 'labels.npy'),
        source_probs: probs
          ? { file: join(flags.out, 'source_probs.npy'), label_space: probs.labelSpace }
          : { file: null, reason: r.sourceProbsNote },
        unknown_tokens: r.unknownTokens,
      };
      writeJsonAtomic(join(flags.out, 'features.json'), { ...summary, uids: r.uids });
      const problem = r.unknownTokens && unknownTokenProblem(r.unknownTokens, flags.unknownTokenThreshold);
      if (problem) warnUnknownTokens(`${taskDir} under ${modelDir}'s tokenizer`, [problem]);
      if (flags.quiet) {
        if (flags.json) printJson(summary);
        return;
      }
      process.stderr.write(
        `${summary.n} x ${summary.d} features (${r.kind}) of ${summary.classes.length} classes → ${flags.out}\n`,
      );
      process.stderr.write(
        probs
          ? `source probabilities ${probs.rows} x ${probs.cols}: ${probs.labelSpace.description}\n`
          : `no source probabilities: ${r.sourceProbsNote}\n`,
      );
      if (r.truncated)
        process.stderr.write(
          `note: ${r.truncated} prompts were longer than the model's context; their start was dropped\n`,
        );
      if (flags.json) printJson(summary);
    });
}
