/**
 * Predictions made anywhere, as JSONL: one object per line with `prediction` and `reference`, and optionally
 * `choices`, `choice_loglik` (one {logprob, chars?, greedy?} per option), `gold` and `uid`. Every problem is
 * reported with the file and line, including what the grader rejects in a row.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { TlabError } from '../../util/errors.ts';
import { describeJson, isJsonObject } from '../../util/json-file.ts';
import type { ChoiceLoglik, GradeAggregate, GradeInput, Grader, RowGrade } from './types.ts';

export interface PredictionRow {
  /** 1-based line in the file. */
  line: number;
  uid?: string;
  input: GradeInput;
}

const FIELDS = ['prediction', 'reference', 'choices', 'choice_loglik', 'gold', 'uid'];

function choiceLoglik(value: unknown, choices: readonly string[] | undefined, at: string): ChoiceLoglik[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new TlabError(
      `${at}: field 'choice_loglik': expected a list of {logprob, chars, greedy}, found ${describeJson(value)}`,
    );
  return value.map((v, i) => {
    const where = `${at}: field 'choice_loglik[${i}]'`;
    if (!isJsonObject(v) || typeof v.logprob !== 'number')
      throw new TlabError(
        `${where}: expected {logprob: number, chars?: number, greedy?: boolean}, found ${describeJson(v)}`,
      );
    const chars = v.chars ?? (choices ? [...choices[i]].length : undefined);
    if (typeof chars !== 'number' || !(chars > 0))
      throw new TlabError(`${where}: 'chars' must be a positive number (or give 'choices' to count them)`);
    if (v.greedy !== undefined && typeof v.greedy !== 'boolean')
      throw new TlabError(`${where}: 'greedy' must be true or false`);
    return { logprob: v.logprob, chars, greedy: v.greedy === true };
  });
}

/** Parses one JSONL line's object into a grader input; `at` is "file:line". */
export function parsePredictionRow(value: unknown, at: string, line: number, grader: Grader): PredictionRow {
  if (!isJsonObject(value))
    throw new TlabError(`${at}: expected a JSON object, found ${describeJson(value)}`);
  for (const key of Object.keys(value)) {
    if (!FIELDS.includes(key))
      throw new TlabError(`${at}: unknown field '${key}'`, `fields: ${FIELDS.join(', ')}`);
  }
  const { prediction, reference, choices, gold, uid } = value;
  if (prediction === undefined && grader.needs === 'generation')
    throw new TlabError(
      `${at}: field 'prediction': missing (the ${grader.name} grader grades generated text)`,
    );
  if (prediction !== undefined && typeof prediction !== 'string')
    throw new TlabError(`${at}: field 'prediction': expected a string, found ${describeJson(prediction)}`);
  if (reference === undefined && gold === undefined) throw new TlabError(`${at}: field 'reference': missing`);
  if (choices !== undefined && !(Array.isArray(choices) && choices.every((c) => typeof c === 'string')))
    throw new TlabError(`${at}: field 'choices': expected a list of strings, found ${describeJson(choices)}`);
  if (gold !== undefined && !(typeof gold === 'number' && Number.isInteger(gold) && gold >= 0))
    throw new TlabError(
      `${at}: field 'gold': expected an option index (an integer >= 0), found ${describeJson(gold)}`,
    );
  if (uid !== undefined && typeof uid !== 'string' && typeof uid !== 'number')
    throw new TlabError(`${at}: field 'uid': expected a string, found ${describeJson(uid)}`);
  const input: GradeInput = { prediction: prediction ?? '', reference: reference ?? null };
  if (choices !== undefined) input.choices = choices as string[];
  if (value.choice_loglik !== undefined)
    input.choiceLoglik = choiceLoglik(value.choice_loglik, input.choices, at);
  if (gold !== undefined) input.gold = gold;
  return { line, ...(uid === undefined ? {} : { uid: String(uid) }), input };
}

/** Reads a predictions JSONL file (blank lines skipped); an empty file is an error. */
export function readPredictionRows(path: string, grader: Grader): PredictionRow[] {
  if (!existsSync(path)) throw new TlabError(`${path}: file not found`);
  if (statSync(path).isDirectory()) throw new TlabError(`${path}: is a folder, expected a JSONL file`);
  const rows: PredictionRow[] = [];
  const lines = readFileSync(path, 'utf8')
    .replace(/^\uFEFF/, '')
    .split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const at = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new TlabError(`${at}: not valid JSON: ${(error as Error).message}`);
    }
    rows.push(parsePredictionRow(value, at, i + 1, grader));
  });
  if (rows.length === 0)
    throw new TlabError(`${path}: no prediction rows (expected one JSON object per line)`);
  return rows;
}

/** Grades every row; a row the grader rejects is reported with its file and line. */
export function gradeRows(
  grader: Grader,
  rows: readonly PredictionRow[],
  source: string,
  onRow?: () => void,
): { grades: RowGrade[]; aggregate: GradeAggregate } {
  const grades = rows.map((row) => {
    try {
      const g = grader.gradeRow(row.input);
      onRow?.();
      return g;
    } catch (error) {
      if (error instanceof TlabError)
        throw new TlabError(`${source}:${row.line}: ${error.message}`, error.details);
      throw error;
    }
  });
  return { grades, aggregate: grader.aggregate(grades) };
}
