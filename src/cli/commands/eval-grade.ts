/**
 * `tlab eval grade --grader <name> --predictions P.jsonl`: grade predictions made anywhere (rows
 * {"prediction", "reference"} plus optional choices, choice_loglik, gold, uid) and print the aggregate; with
 * --json one JSON object per row, then the aggregate on the last line. `tlab eval grade --list` and
 * `tlab eval graders` describe every grader and its options.
 */
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { TopLevelSpec } from 'vega-lite';
import { createGrader, type GradeAggregate, graderName, listGraders } from '../../eval/graders/index.ts';
import { gradeRows, readPredictionRows } from '../../eval/graders/predictions-file.ts';
import { savePlot } from '../../report/plot.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../util/atomic-write.ts';
import { TlabError } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';

interface GradeFlags {
  grader?: string;
  predictions?: string;
  option?: [string, string][];
  json?: boolean;
  out?: string;
  list?: boolean;
}

function keyValue(value: string, previous: [string, string][] | undefined): [string, string][] {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected key=value (e.g. ignore_case=true), got '${value}'`);
  return [...(previous ?? []), [value.slice(0, at), value.slice(at + 1)]];
}

/**
 * `--option k=v` pairs as grader options: text is converted by the grader to the option's type; a value that
 * starts with '[' is read as a JSON list, and a key given twice collects a list.
 */
export function optionsFromPairs(pairs: readonly [string, string][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, text] of pairs) {
    let value: unknown = text;
    if (text.trimStart().startsWith('[')) {
      try {
        value = JSON.parse(text);
      } catch {
        throw new TlabError(`--option ${key}: '${text}' starts with '[' but is not a JSON list`);
      }
    }
    if (key in out) out[key] = [out[key], value].flat();
    else out[key] = value;
  }
  return out;
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}

/** The aggregate as a small table: the topline first, then every other metric; per-field scores if any. */
export function aggregateTable(graderName: string, agg: GradeAggregate): string {
  const names = [agg.topline, ...Object.keys(agg.metrics).filter((k) => k !== agg.topline)];
  const width = Math.max(...names.map((n) => n.length), 6);
  const lines = [`grader ${graderName}, ${agg.n} rows`];
  for (const n of names) {
    lines.push(
      `  ${n.padEnd(width)}  ${formatNumber(agg.metrics[n])}${n === agg.topline ? '  (topline)' : ''}`,
    );
  }
  const fields = Object.entries(agg.fields ?? {});
  if (fields.length > 0) {
    const shown = fields.sort((a, b) => a[1].f1 - b[1].f1 || a[0].localeCompare(b[0])).slice(0, 20);
    const pw = Math.max(...shown.map(([p]) => p.length), 5);
    lines.push('', `  ${'field'.padEnd(pw)}  precision  recall      f1  tp/fp/fn`);
    for (const [path, f] of shown) {
      lines.push(
        `  ${path.padEnd(pw)}  ${f.precision.toFixed(4).padStart(9)}  ${f.recall.toFixed(4).padStart(6)}  ${f.f1.toFixed(4).padStart(6)}  ${f.tp}/${f.fp}/${f.fn}`,
      );
    }
    if (fields.length > shown.length)
      lines.push(`  (${fields.length - shown.length} more fields; lowest F1 shown)`);
  }
  return `${lines.join('\n')}\n`;
}

function listingText(): string {
  const lines: string[] = [];
  for (const g of listGraders()) {
    const aliases = g.aliases.length ? ` (also ${g.aliases.join(', ')})` : '';
    lines.push(
      `${g.name}${aliases}: ${g.description}${g.needs === 'choice-loglik' ? ' [needs choice_loglik]' : ''}`,
    );
    for (const o of g.options) {
      lines.push(`    ${o.name} (${o.type}, default ${JSON.stringify(o.default)}): ${o.description}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function scoreHistogram(graderName: string, agg: GradeAggregate, scores: number[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${graderName}: per-row scores (${agg.topline} = ${formatNumber(agg.metrics[agg.topline])}, n = ${agg.n})`,
    width: 420,
    height: 240,
    background: 'white',
    data: { values: scores.map((score) => ({ score })) },
    mark: 'bar',
    encoding: {
      x: { field: 'score', type: 'quantitative', bin: { extent: [0, 1], step: 0.1 }, title: 'row score' },
      y: { aggregate: 'count', type: 'quantitative', title: 'rows', axis: { tickMinStep: 1 } },
    },
  };
}

async function runGrade(flags: GradeFlags, write: (text: string) => void): Promise<void> {
  if (flags.list) {
    write(flags.json ? `${JSON.stringify(listGraders())}\n` : listingText());
    return;
  }
  if (!flags.grader) throw new TlabError("--grader: required (run 'tlab eval graders' for the list)");
  if (!flags.predictions)
    throw new TlabError('--predictions: required (a JSONL file of {"prediction", "reference"} rows)');
  const grader = createGrader(
    graderName(flags.grader, '--grader'),
    optionsFromPairs(flags.option ?? []),
    '--option',
  );
  const rows = readPredictionRows(flags.predictions, grader);
  const progress = new Progress({
    total: rows.length,
    label: 'grade',
    unit: 'row',
    silent: rows.length < 1000,
  });
  const { grades, aggregate } = gradeRows(grader, rows, flags.predictions, () => progress.tick());
  progress.finish();
  const perRow = grades.map((g, i) => ({
    line: rows[i].line,
    ...(rows[i].uid === undefined ? {} : { uid: rows[i].uid }),
    score: g.score,
    details: g.details,
  }));
  const summary = {
    grader: grader.name,
    n: aggregate.n,
    topline: aggregate.topline,
    score: aggregate.metrics[aggregate.topline],
    metrics: aggregate.metrics,
    ...(aggregate.fields ? { fields: aggregate.fields } : {}),
    options: grader.options ?? {},
    predictions: flags.predictions,
  };
  if (flags.out) {
    writeFileAtomic(join(flags.out, 'grades.jsonl'), perRow.map((r) => `${JSON.stringify(r)}\n`).join(''));
    writeJsonAtomic(join(flags.out, 'aggregate.json'), summary);
    await savePlot(
      scoreHistogram(
        grader.name,
        aggregate,
        grades.map((g) => g.score),
      ),
      join(flags.out, 'scores'),
    );
  }
  if (flags.json) {
    write(perRow.map((r) => `${JSON.stringify(r)}\n`).join(''));
    write(`${JSON.stringify(summary)}\n`);
  } else {
    write(aggregateTable(grader.name, aggregate));
    if (flags.out) write(`wrote ${join(flags.out, 'grades.jsonl')}, aggregate.json, scores.svg/.png\n`);
  }
}

export function registerEvalGrade(evalCommand: Command): void {
  evalCommand
    .command('grade')
    .description('grade predictions made anywhere: JSONL rows {"prediction", "reference"}')
    .option('-g, --grader <name>', 'grader name or alias (e.g. exact_match, json, JSONGrader)')
    .option(
      '-p, --predictions <file>',
      'JSONL: prediction, reference, and optionally choices, choice_loglik, gold, uid',
    )
    .option('--option <key=value>', 'a grader option (repeatable), e.g. --option ignore_case=true', keyValue)
    .option('--json', 'print one JSON object per row (score, details), then the aggregate on the last line')
    .option(
      '-o, --out <dir>',
      'write grades.jsonl, aggregate.json and a histogram of row scores (scores.svg/.png)',
    )
    .option('--list', 'list the graders and their options')
    .action(async (flags: GradeFlags, command: Command) => {
      const output = command.configureOutput();
      await runGrade(flags, (t) => (output.writeOut ? output.writeOut(t) : process.stdout.write(t)));
    });
  evalCommand
    .command('graders')
    .description('list the graders, their options and defaults')
    .option('--json', 'as JSON')
    .action((flags: { json?: boolean }, command: Command) => {
      const output = command.configureOutput();
      const write = (t: string) => (output.writeOut ? output.writeOut(t) : process.stdout.write(t));
      write(flags.json ? `${JSON.stringify(listGraders())}\n` : listingText());
    });
}
