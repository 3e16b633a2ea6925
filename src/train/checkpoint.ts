/**
 * Checkpoints: `<dir>/step-<n>/` holds trainable.safetensors (only the weights that train: adapters alone for
 * LoRA), optimizer.safetensors (moments), and trainer_state.json (step, seed, counters, config fingerprint).
 * A checkpoint is written into a temporary folder and renamed, then `latest` (a one-line file) is replaced
 * atomically, so a crash at any moment leaves the previous checkpoint intact and found.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../engine/io/safetensors.ts';
import type { ParameterStore } from '../engine/runtime/param-store.ts';
import type { HostTensor } from '../engine/tensor.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';

export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  seed: number;
  /** Fingerprint of the settings that must not change across a resume (model, strategy, data, batch). */
  fingerprint: string;
  tokensSeen: number;
  bestEvalLoss: number | null;
  /** Wall-clock seconds spent training, summed over sessions. */
  trainSeconds: number;
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  params: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
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
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
  } catch (error) {
    throw new TlabError(`${statePath}: not valid JSON (${(error as Error).message})`);
  }
  if (!Number.isInteger(state.step) || state.step < 0)
    throw new TlabError(`${statePath}: step must be a non-negative integer`);
  const params = readSafetensors(join(dir, 'trainable.safetensors'));
  const optPath = join(dir, 'optimizer.safetensors');
  const optimizer = existsSync(optPath) ? readSafetensors(optPath) : new Map<string, HostTensor>();
  return { dir, state, params, optimizer };
}
