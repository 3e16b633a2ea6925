/**
 * What must not change for a run to resume from its checkpoint: the whole parsed training config except an
 * explicit list of fields that may (paths that moved, how long and how often), the task's data (its split
 * files' SHA-256s), the tokenizer's contents and the starting weights. The fingerprint is a hash of these
 * settings; the settings themselves are kept in the checkpoint so a refused resume can say what changed.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../data/canonical-json.ts';
import type { TaskManifest } from '../data/task-format.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import type { TrainConfig } from './config.ts';

/**
 * Config fields that may differ between a run and its resume. Paths may move because their contents are in the
 * fingerprint (data, tokenizer, weights); max_steps extends or shortens a run (the schedule then follows it from
 * the resumed step); the others only change how often the run evaluates, saves or logs, or what it checks.
 */
export const RESUME_MAY_CHANGE = [
  'name',
  'out',
  'data.task',
  'data.eval_split',
  'data.allow_unknown_tokens',
  'data.unknown_token_threshold',
  'tokenizer.from_tasks',
  'model.from',
  'model.adapter',
  'tokenizer.path',
  'training.max_steps',
  'training.eval_every',
  'training.eval_batches',
  'training.save_every',
  'training.keep_checkpoints',
  'training.log_every',
] as const;

export interface ResumeInputs {
  config: TrainConfig;
  /** The task manifest's splits (file, rows, SHA-256 of each). */
  dataSplits: TaskManifest['splits'];
  tokenizer: TextTokenizer;
  /** The weights training starts from (a model folder's), or null when they are initialised from the seed. */
  startWeights: ReadonlyMap<string, HostTensor> | null;
  /** The model's resolved config (config.json fields, defaults filled in). */
  modelConfig: unknown;
}

export interface ResumeFingerprint {
  fingerprint: string;
  settings: Record<string, unknown>;
}

export function resumeFingerprint(inputs: ResumeInputs): ResumeFingerprint {
  const config = JSON.parse(JSON.stringify(inputs.config)) as Record<string, unknown>;
  for (const path of RESUME_MAY_CHANGE) {
    const keys = path.split('.');
    let at: Record<string, unknown> | undefined = config;
    for (const k of keys.slice(0, -1)) at = at?.[k] as Record<string, unknown> | undefined;
    if (at) delete at[keys[keys.length - 1]];
  }
  const settings = {
    config,
    data: inputs.dataSplits,
    tokenizer: tokenizerHash(inputs.tokenizer),
    start_weights: inputs.startWeights ? weightsHash(inputs.startWeights) : 'initialised from the seed',
    model_config: inputs.modelConfig,
  };
  const fingerprint = createHash('sha256').update(canonicalJson(settings)).digest('hex');
  return { fingerprint, settings: JSON.parse(canonicalJson(settings)) as Record<string, unknown> };
}

/** SHA-256 of the tokenizer's files as it saves them (vocabulary, merges, config, chat template). */
export function tokenizerHash(tokenizer: TextTokenizer): string {
  const h = createHash('sha256');
  const saver = tokenizer as TextTokenizer & { save?: (dir: string) => void };
  if (saver.save) {
    const dir = mkdtempSync(join(tmpdir(), 'tlab-tokhash-'));
    try {
      saver.save(dir);
      for (const f of readdirSync(dir).sort()) h.update(`${f}\0`).update(readFileSync(join(dir, f)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    for (let id = 0; id < tokenizer.vocabSize; id++) h.update(`${id}\0${tokenizer.idToToken(id) ?? ''}\0`);
  }
  return h.digest('hex');
}

/** SHA-256 over every tensor's name, dtype, shape and bytes, in name order. */
export function weightsHash(weights: ReadonlyMap<string, HostTensor>): string {
  const h = createHash('sha256');
  for (const name of [...weights.keys()].sort()) {
    const t = weights.get(name)!;
    const d = t.data;
    h.update(`${name}\0${t.dtype}\0${t.shape.join('x')}\0`);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}
