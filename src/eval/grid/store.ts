/**
 * The grid's files (see schema.ts). Every finished cell is one JSON file written atomically, beside its grader log
 * (also atomic); samples finished inside an unfinished cell are appended, whole lines only, to a hidden partial
 * log that starts with the cell's key, so a crash loses at most the batch in flight and a rerun continues the
 * cell where it stopped. eval_grid.json and the cookbook list are rebuilt from the cell files after every cell.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { isJsonObject } from '../../util/json-file.ts';
import {
  type CookbookRow,
  EVAL_GRID_SCHEMA,
  type EvalGrid,
  type GraderLogRow,
  type GridCell,
  type GridModel,
  type GridTask,
} from './schema.ts';

export class GridStore {
  constructor(readonly out: string) {}

  cellPath(model: string, task: string): string {
    return join(this.out, 'cells', model, `${task}.json`);
  }

  /** grader_logs/<model>/<task>.jsonl relative to the grid folder. */
  logFile(model: string, task: string): string {
    return join('grader_logs', model, `${task}.jsonl`);
  }

  private partialPath(model: string, task: string): string {
    return join(this.out, 'grader_logs', model, `.${task}.partial.jsonl`);
  }

  /** The finished cell on disk, or null (missing, unreadable, or not a cell). */
  readCell(model: string, task: string): GridCell | null {
    const path = this.cellPath(model, task);
    if (!existsSync(path)) return null;
    try {
      const cell = JSON.parse(readFileSync(path, 'utf8')) as GridCell;
      return isJsonObject(cell) && cell.model === model && cell.task === task && typeof cell.key === 'string'
        ? cell
        : null;
    } catch {
      return null;
    }
  }

  writeCell(cell: GridCell): void {
    writeJsonAtomic(this.cellPath(cell.model, cell.task), cell);
  }

  writeLog(model: string, task: string, rows: readonly GraderLogRow[]): string {
    const file = this.logFile(model, task);
    writeFileAtomic(join(this.out, file), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return file;
  }

  /** Graded rows of a cell's log (for transfer CIs and the dashboard); errors name the file and line. */
  readLog(file: string): GraderLogRow[] {
    const path = join(this.out, file);
    if (!existsSync(path)) throw new TlabError(`${path}: grader log not found`);
    return readLogRows(path);
  }

  /** Rows finished earlier in an unfinished cell with this key (a torn last line is dropped). */
  readPartial(model: string, task: string, key: string): GraderLogRow[] {
    const path = this.partialPath(model, task);
    if (!existsSync(path)) return [];
    const lines = readFileSync(path, 'utf8').split('\n');
    let header: unknown;
    try {
      header = JSON.parse(lines[0]);
    } catch {
      return [];
    }
    if (!isJsonObject(header) || header.key !== key) return [];
    const rows: GraderLogRow[] = [];
    // Only newline-terminated lines are complete: the last element is '' or a torn write.
    for (const line of lines.slice(1, -1)) {
      try {
        rows.push(JSON.parse(line) as GraderLogRow);
      } catch {
        break;
      }
    }
    return rows;
  }

  /** Appends finished rows to the cell's partial log, starting it (with the key) when needed. */
  appendPartial(
    model: string,
    task: string,
    key: string,
    rows: readonly GraderLogRow[],
    fresh: boolean,
  ): void {
    const path = this.partialPath(model, task);
    mkdirSync(dirname(path), { recursive: true });
    const body = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
    // One write per batch: a crash tears at most its last line, which readPartial drops.
    if (fresh) writeFileAtomic(path, `${JSON.stringify({ key })}\n${body}`);
    else appendFileSync(path, body);
  }

  removePartial(model: string, task: string): void {
    rmSync(this.partialPath(model, task), { force: true });
  }

  /** Writes eval_grid.json and the cookbook's eval_grid_results.json for these models, tasks and cells. */
  writeGrid(models: GridModel[], tasks: GridTask[], cells: GridCell[], createdAt: string): EvalGrid {
    const grid: EvalGrid = {
      schema: EVAL_GRID_SCHEMA,
      created_at: createdAt,
      updated_at: new Date().toISOString(),
      models,
      tasks,
      cells,
    };
    writeJsonAtomic(join(this.out, 'eval_grid.json'), grid);
    writeJsonAtomic(join(this.out, 'eval_grid_results.json'), cookbookRows(cells));
    return grid;
  }

  /** created_at of an existing eval_grid.json, so reruns keep it. */
  createdAt(): string | null {
    const path = join(this.out, 'eval_grid.json');
    if (!existsSync(path)) return null;
    try {
      const g = JSON.parse(readFileSync(path, 'utf8')) as EvalGrid;
      return typeof g.created_at === 'string' ? g.created_at : null;
    } catch {
      return null;
    }
  }
}

/** The llama-cookbook's list form; skipped cells are left out, error cells written as it writes them. */
export function cookbookRows(cells: readonly GridCell[]): CookbookRow[] {
  return cells.flatMap((c): CookbookRow[] => {
    if (c.status === 'done')
      return [
        {
          model: c.model,
          task: c.task,
          topline_metric: c.topline_metric!,
          score: c.score!,
          metrics: c.metrics,
        },
      ];
    if (c.status === 'error')
      return [
        { model: c.model, task: c.task, topline_metric: 'error', score: -1, metrics: {}, error: c.error },
      ];
    return [];
  });
}

/** Reads a grader log (JSONL of GraderLogRow); a line that does not parse is an error naming it. */
export function readLogRows(path: string): GraderLogRow[] {
  const rows: GraderLogRow[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (error) {
        throw new TlabError(`${path}:${i + 1}: not JSON (${(error as Error).message})`);
      }
      if (!isJsonObject(row) || typeof row.uid !== 'string' || typeof row.score !== 'number')
        throw new TlabError(`${path}:${i + 1}: expected a grader log row with uid and score`);
      rows.push(row as unknown as GraderLogRow);
    });
  return rows;
}
