/**
 * Checkpoints: `<dir>/step-<n>/` holds trainable.safetensors (only the weights that train: adapters alone for
 * LoRA), optimizer.safetensors (moments), and trainer_state.json (step, seed, counters, config fingerprint and
 * the settings it covers). A checkpoint is written into a temporary folder and renamed, then `latest` (a one-line
 * file) is replaced atomically, so a crash at any moment leaves the previous checkpoint intact and found. Reading
 * one validates trainer_state.json; the trainer then checks every tensor name and shape (resume is exact or
 * refused).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readSafetensors } from '../engine/io/safetensors.ts';
import type { ParameterStore } from '../engine/runtime/param-store.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { zodIssuesError } from '../util/zod-errors.ts';

export const TrainerStateSchema = z
  .object({
    /** Optimizer steps completed. */
    step: z.int().min(0),
    seed: z.int(),
    /** Hash of the settings that must not change across a resume (config, data, tokenizer, starting weights). */
    fingerprint: z.string().min(1),
    /** What the fingerprint covers, readable, so a refused resume can say what changed. */
    settings: z.record(z.string(), z.unknown()).optional(),
    tokensSeen: z.number().min(0),
    bestEvalLoss: z.number().nullable(),
    /** Wall-clock seconds spent training, summed over sessions. */
    trainSeconds: z.number().min(0),
  })
  .strict();

export type TrainerState = z.infer<typeof TrainerStateSchema>;

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  params: Map<string, HostTensor>;
  /** Optimizer state; null when the checkpoint has no optimizer.safetensors. */
  optimizer: Map<string, HostTensor> | null;
}

const LATEST = 'latest';

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

export function saveCheckpoint(
  root: string,
  store: ParameterStore,
  paramNames: readonly string[],
  stateNames: readonly string[],
  state: TrainerState,
  keep: number,
): string {
  mkdirSync(root, { recursive: true });
  const name = checkpointName(state.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    store.save(join(tmp, 'trainable.safetensors'), paramNames, { format: 'pt', producer: 'transferlab' });
    if (stateNames.length) store.save(join(tmp, 'optimizer.safetensors'), stateNames);
    writeJsonAtomic(join(tmp, 'trainer_state.json'), state);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  writeFileAtomic(join(root, LATEST), `${name}\n`);
  pruneCheckpoints(root, keep);
  return final;
}

/** Keeps the newest `keep` checkpoints (and always the one `latest` names). */
function pruneCheckpoints(root: string, keep: number): void {
  if (keep <= 0) return;
  const latest = readLatestName(root);
  const all = readdirSync(root)
    .filter((n) => /^step-\d+$/.test(n))
    .sort();
  for (const n of all.slice(0, Math.max(0, all.length - keep)))
    if (n !== latest) rmSync(join(root, n), { recursive: true, force: true });
}

function readLatestName(root: string): string | null {
  const p = join(root, LATEST);
  return existsSync(p) ? readFileSync(p, 'utf8').trim() : null;
}

/** The checkpoint `latest` points to, or null when the folder has none. */
export function loadLatestCheckpoint(root: string): LoadedCheckpoint | null {
  const name = readLatestName(root);
  if (!name) return null;
  return loadCheckpoint(join(root, name));
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const statePath = join(dir, 'trainer_state.json');
  if (!existsSync(statePath)) throw new TlabError(`${dir}: not a checkpoint (trainer_state.json is missing)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (error) {
    throw new TlabError(`${statePath}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = TrainerStateSchema.safeParse(raw);
  if (!parsed.success) throw zodIssuesError(statePath, [], parsed.error);
  const paramsPath = join(dir, 'trainable.safetensors');
  if (!existsSync(paramsPath))
    throw new TlabError(
      `${paramsPath}: missing, so the trained weights of step ${parsed.data.step} are lost`,
    );
  const params = readSafetensors(paramsPath);
  const optPath = join(dir, 'optimizer.safetensors');
  const optimizer = existsSync(optPath) ? readSafetensors(optPath) : null;
  return { dir, state: parsed.data, params, optimizer };
}
