/**
 * Reads an experiment folder (docs/experiment-layout.md) for the report and the dashboard: run records, the eval
 * grid, the transfer matrix, the study summary, estimator results, training logs and geometry results. Missing
 * files are normal (a study in progress has only some of them); a file that is there but malformed becomes a
 * warning naming the file and field, so one bad file does not hide the rest.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { EvalGrid } from '../eval/grid/schema.ts';
import type { TransferResult } from '../eval/transfer.ts';
import { parseEvalGrid, readTransferResult } from '../eval/transfer-input.ts';
import { TlabError } from '../util/errors.ts';
import { isJsonObject, readJsonFile } from '../util/json-file.ts';
import { type EstimatorResult, readEstimatorResults } from './estimator-points.ts';
import {
  type ExperimentSummary,
  RUN_SCHEMA,
  RUN_STAGES,
  RUN_STATES,
  type RunRecord,
  SUMMARY_SCHEMA,
} from './experiment-types.ts';
import { type GeometryAnalysis, readGeometry } from './geometry-results.ts';
import { findTrainingLogs, type TrainingLogRef } from './training-curves.ts';

export interface ExperimentData {
  /** Absolute path with symlinks resolved. */
  dir: string;
  name: string;
  runs: RunRecord[];
  summary: ExperimentSummary | null;
  grid: EvalGrid | null;
  transfer: TransferResult | null;
  estimators: EstimatorResult[];
  logs: TrainingLogRef[];
  geometry: GeometryAnalysis[];
  /** Malformed files, one line each, naming the file. */
  warnings: string[];
}

/** Files whose presence makes a folder an experiment (or an eval-grid folder that the views can show). */
const MARKERS = ['runs', 'plan.json', 'summary.json', 'eval_grid.json', 'transfer.json', 'experiment.yaml'];

export function checkExperimentDir(dir: string): string {
  if (!existsSync(dir))
    throw new TlabError(`${dir}: no such folder`, 'give an experiment folder (tlab run writes one)');
  if (!statSync(dir).isDirectory()) throw new TlabError(`${dir}: not a folder`, 'give an experiment folder');
  if (!MARKERS.some((m) => existsSync(join(dir, m))))
    throw new TlabError(
      `${dir}: not an experiment folder (none of ${MARKERS.join(', ')})`,
      'give the folder `tlab run` (or `tlab eval grid`) wrote',
    );
  return realpathSync(dir);
}

/** A JSON file when it exists and reads, else null (with a warning when it exists but does not read). */
function readOptional<T>(
  path: string,
  parse: (value: unknown, file: string) => T,
  warnings: string[],
): T | null {
  if (!existsSync(path)) return null;
  try {
    return parse(readJsonFile(path), path);
  } catch (error) {
    warnings.push(error instanceof TlabError ? error.message : `${path}: ${(error as Error).message}`);
    return null;
  }
}

function parseRunRecord(value: unknown, file: string): RunRecord {
  if (!isJsonObject(value)) throw new TlabError(`${file}: expected a JSON object (a run record)`);
  if (value.schema !== RUN_SCHEMA)
    throw new TlabError(`${file}: schema: ${JSON.stringify(value.schema)} is not '${RUN_SCHEMA}'`);
  for (const key of ['id', 'name'] as const)
    if (typeof value[key] !== 'string' || value[key] === '')
      throw new TlabError(`${file}: ${key}: expected a non-empty string, got ${JSON.stringify(value[key])}`);
  if (!RUN_STAGES.includes(value.stage as (typeof RUN_STAGES)[number]))
    throw new TlabError(
      `${file}: stage: ${JSON.stringify(value.stage)} is not one of ${RUN_STAGES.join(', ')}`,
    );
  if (!RUN_STATES.includes(value.state as (typeof RUN_STATES)[number]))
    throw new TlabError(
      `${file}: state: ${JSON.stringify(value.state)} is not one of ${RUN_STATES.join(', ')}`,
    );
  if (value.params !== undefined && !isJsonObject(value.params))
    throw new TlabError(`${file}: params: expected an object of hyper-parameters`);
  if (value.outputs !== undefined && !Array.isArray(value.outputs))
    throw new TlabError(`${file}: outputs: expected a list of paths`);
  const r = value as Partial<RunRecord>;
  return {
    ...(value as unknown as RunRecord),
    params: r.params ?? {},
    config: r.config ?? {},
    deps: r.deps ?? [],
    outputs: r.outputs ?? [],
    attempts: r.attempts ?? 0,
    executor: r.executor ?? { kind: 'inline' },
  };
}

function parseSummary(value: unknown, file: string): ExperimentSummary {
  if (!isJsonObject(value)) throw new TlabError(`${file}: expected a JSON object (the study summary)`);
  if (value.schema !== SUMMARY_SCHEMA)
    throw new TlabError(`${file}: schema: ${JSON.stringify(value.schema)} is not '${SUMMARY_SCHEMA}'`);
  if (!isJsonObject(value.experiment)) throw new TlabError(`${file}: experiment: expected an object`);
  if (
    value.estimators !== undefined &&
    value.estimators !== null &&
    !isJsonObject(value.estimators) &&
    !Array.isArray(value.estimators)
  )
    throw new TlabError(`${file}: estimators: expected a list of correlations or an object keyed by task`);
  if (Array.isArray(value.estimators))
    value.estimators.forEach((c, i) => {
      if (
        !isJsonObject(c) ||
        typeof c.task !== 'string' ||
        typeof c.metric !== 'string' ||
        (typeof c.kendall !== 'number' && c.kendall !== null)
      )
        throw new TlabError(
          `${file}: estimators.${i}: expected {task, metric, n_samples, models, kendall (a number or null), kendall_ci95}`,
        );
    });
  if (value.actual_scores !== undefined && !Array.isArray(value.actual_scores))
    throw new TlabError(`${file}: actual_scores: expected a list of {model, task, accuracy}`);
  if (value.notes !== undefined && !Array.isArray(value.notes))
    throw new TlabError(`${file}: notes: expected a list of strings`);
  return value as unknown as ExperimentSummary;
}

export function readRuns(dir: string, warnings: string[]): RunRecord[] {
  const root = join(dir, 'runs');
  if (!existsSync(root)) return [];
  const runs: RunRecord[] = [];
  for (const id of readdirSync(root).sort()) {
    const file = join(root, id, 'run.json');
    if (id.startsWith('.') || !existsSync(file)) continue;
    const r = readOptional(file, parseRunRecord, warnings);
    if (r) runs.push(r);
  }
  // Plan order is not in the records; stage order then name reads like a plan.
  const stage = (r: RunRecord) => RUN_STAGES.indexOf(r.stage);
  return runs.sort((a, b) => stage(a) - stage(b) || a.name.localeCompare(b.name));
}

/** Everything the views show, read fresh from the folder. */
export function loadExperiment(dirArg: string): ExperimentData {
  const dir = checkExperimentDir(dirArg);
  const warnings: string[] = [];
  const summary = readOptional(join(dir, 'summary.json'), parseSummary, warnings);
  const grid = readOptional(join(dir, 'eval_grid.json'), parseEvalGrid, warnings);
  const transferFile = join(dir, 'transfer.json');
  let transfer: TransferResult | null = null;
  if (existsSync(transferFile))
    try {
      transfer = readTransferResult(transferFile);
    } catch (error) {
      warnings.push((error as Error).message);
    }
  const runs = readRuns(dir, warnings);
  return {
    dir,
    name: summary?.experiment.name ?? basename(dir),
    runs,
    summary,
    grid,
    transfer,
    estimators: readEstimatorResults(dir, warnings),
    logs: findTrainingLogs(dir, runs, warnings),
    geometry: readGeometry(dir, warnings),
    warnings,
  };
}

/** Reads a JSON file that must be there (e.g. one the caller found by listing); errors name the file. */
export function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TlabError(`${path}: not valid JSON: ${(error as Error).message}`);
  }
}
