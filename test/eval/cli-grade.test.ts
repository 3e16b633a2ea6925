/**
 * `tlab eval grade` and `tlab eval graders`: the aggregate table, --json rows then the aggregate, --out files,
 * grader options from --option, and errors that name the file and line of a bad row.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CommanderError } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { TlabError } from '../../src/util/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'tlab-grade-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, rows: (object | string)[]): string {
  const path = join(dir, name);
  writeFileSync(path, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n'));
  return path;
}

/** The CLI in this process: what it printed and its exit status. */
async function tlab(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const program = buildProgram();
  const out: string[] = [];
  const err: string[] = [];
  const evalCommand = program.commands.find((c) => c.name() === 'eval')!;
  for (const c of evalCommand.commands) {
    c.configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
    c.exitOverride();
  }
  let status = 0;
  try {
    await program.parseAsync(['node', 'tlab', 'eval', ...args]);
  } catch (error) {
    if (error instanceof CommanderError) status = error.exitCode;
    else if (error instanceof TlabError) {
      status = 1;
      err.push(`error: ${error.message}\n`);
    } else throw error;
  }
  return { status, stdout: out.join(''), stderr: err.join('') };
}

const qa = file('qa.jsonl', [
  { uid: 'q1', prediction: 'Paris', reference: 'Paris' },
  { uid: 'q2', prediction: ' paris ', reference: ['Paris', 'City of Light'] },
  '',
  { uid: 'q3', prediction: 'London', reference: 'Paris' },
]);

test('tlab eval grade --help and the real executable exit codes', () => {
  const help = spawnSync(process.execPath, ['bin/tlab.js', 'eval', 'grade', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--predictions <file>/);
  assert.match(help.stdout, /--option <key=value>/);
  const bad = spawnSync(process.execPath, ['bin/tlab.js', 'eval', 'grade', '-g', 'nope', '-p', qa], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^error: --grader: unknown grader 'nope'/);
});

test('text output is a table of the aggregate with the topline marked', async () => {
  const r = await tlab('grade', '--grader', 'exact_match', '--predictions', qa);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'grader exact_match, 3 rows\n  exact_match  0.3333  (topline)\n');
});

test('--json: one object per row with its score, then the aggregate on the last line', async () => {
  const r = await tlab('grade', '-g', 'ExactMatchGrader', '-p', qa, '--option', 'ignore_case=true', '--json');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  assert.deepEqual(
    lines.slice(0, 3).map((l) => [l.uid, l.line, l.score]),
    [
      ['q1', 1, 1],
      ['q2', 2, 1],
      ['q3', 4, 0],
    ],
  );
  const agg = lines[3];
  assert.equal(agg.grader, 'exact_match');
  assert.equal(agg.topline, 'exact_match');
  assert.equal(agg.score, 2 / 3);
  assert.equal(agg.n, 3);
  assert.equal(agg.options.ignore_case, true); // converted from text, defaults filled in
  assert.equal(agg.options.whitespace, true);
});

test('--option: repeated keys collect a list; JSON lists are read; regex options reach the grader', async () => {
  const p = file('gsm.jsonl', [
    { prediction: 'Answer: 1,234 [note]', reference: '1234' },
    { prediction: 'Answer: 7', reference: '8' },
  ]);
  const args = ['grade', '-g', 'regex', '-p', p, '--json', '--option', 'regex_pattern=Answer: ([0-9,]+)'];
  const r = await tlab(...args, '--option', 'regexes_to_ignore=,', '--option', 'regexes_to_ignore=\\s');
  assert.equal(r.status, 0, r.stderr);
  const agg = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(agg.options.regexes_to_ignore, [',', '\\s']);
  assert.equal(agg.metrics.exact_match, 0.5);
  const j = await tlab(...args, '--option', 'regexes_to_ignore=[","]');
  assert.deepEqual(JSON.parse(j.stdout.trim().split('\n').at(-1)!).options.regexes_to_ignore, [',']);
  const bad = await tlab('grade', '-g', 'regex', '-p', p, '--option', 'group_select');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /expected key=value/);
});

test('multiple choice rows with choice_loglik; JSON rows with per-field scores in the table', async () => {
  const mc = file('mc.jsonl', [
    { choices: ['yes', 'no'], choice_loglik: [{ logprob: -1 }, { logprob: -2, greedy: true }], gold: 0 },
    { choices: ['a', 'bbbbbb'], choice_loglik: [{ logprob: -2 }, { logprob: -3 }], gold: 1 },
  ]);
  const r = await tlab('grade', '-g', 'multiple_choice', '-p', mc, '--json');
  assert.equal(r.status, 0, r.stderr);
  const agg = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  // Row 2: acc picks 'a' (−2 > −3); acc_norm picks 'bbbbbb' (−3/6 > −2/1).
  assert.deepEqual(agg.metrics, { acc: 0.5, acc_norm: 1, greedy_match: 0 });
  const js = file('json.jsonl', [
    {
      prediction: '```json\n{"name": "Acme", "total": "$10.00"}\n```',
      reference: '{"name": "acme", "total": 10}',
    },
    { prediction: 'I cannot read it', reference: { name: 'Beta', total: 3 } },
  ]);
  const t = await tlab('grade', '-g', 'JSONGrader', '-p', js);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /field_f1_micro\s+0\.6667\s+\(topline\)/);
  assert.match(t.stdout, /invalid_json_rate\s+0\.5000/);
  assert.match(t.stdout, /cookbook_error_rate\s+0\.5000/);
  assert.match(t.stdout, /name\s+1\.0000\s+0\.5000\s+0\.6667\s+1\/0\/1/);
});

test('--out writes grades.jsonl, aggregate.json and the score histogram, with no temporary files left', async () => {
  const out = join(dir, 'out');
  const r = await tlab('grade', '-g', 'exact_match', '-p', qa, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['aggregate.json', 'grades.jsonl', 'scores.png', 'scores.svg']);
  const grades = readFileSync(join(out, 'grades.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    grades.map((g) => g.score),
    [1, 0, 0],
  );
  assert.equal(JSON.parse(readFileSync(join(out, 'aggregate.json'), 'utf8')).score, 1 / 3);
  assert.match(readFileSync(join(out, 'scores.svg'), 'utf8'), /<svg/);
});

test('a bad row names the file and line; nothing is written when a row fails', async () => {
  const cases: [object | string, RegExp][] = [
    ['{"prediction": "x", "reference": ', /:2: not valid JSON/],
    [{ reference: 'x' }, /:2: field 'prediction': missing/],
    [{ prediction: 3, reference: 'x' }, /:2: field 'prediction': expected a string, found number 3/],
    [{ prediction: 'x' }, /:2: field 'reference': missing/],
    [{ prediction: 'x', reference: 'x', refrence: 1 }, /:2: unknown field 'refrence'/],
    [
      { prediction: 'x', reference: { a: 1 } },
      /:2: reference: expected a string or a non-empty list of strings/,
    ],
    ['[1, 2]', /:2: expected a JSON object, found an array/],
  ];
  for (const [row, message] of cases) {
    const p = file('bad.jsonl', [{ prediction: 'ok', reference: 'ok' }, row]);
    const out = join(dir, 'bad-out');
    const r = await tlab('grade', '-g', 'exact_match', '-p', p, '--out', out);
    assert.equal(r.status, 1, JSON.stringify(row));
    assert.match(
      r.stderr,
      new RegExp(`^error: ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${message.source}`),
      r.stderr,
    );
    assert.equal(existsSync(out), false);
  }
  const numeric = file('num.jsonl', [{ prediction: '3', reference: 'three' }]);
  assert.match(
    (await tlab('grade', '-g', 'numeric', '-p', numeric)).stderr,
    /num\.jsonl:1: reference: expected a number/,
  );
  assert.match(
    (await tlab('grade', '-g', 'exact_match', '-p', join(dir, 'missing.jsonl'))).stderr,
    /missing\.jsonl: file not found/,
  );
  assert.match(
    (await tlab('grade', '-g', 'exact_match', '-p', file('empty.jsonl', ['', ' ']))).stderr,
    /no prediction rows/,
  );
  assert.match((await tlab('grade', '-p', qa)).stderr, /--grader: required/);
});

test('tlab eval graders and grade --list describe every grader with its options', async () => {
  const text = await tlab('graders');
  assert.equal(text.status, 0);
  assert.match(text.stdout, /^json \(also JSONGrader, JsonGrader\):/m);
  assert.match(text.stdout, /^ {4}regex_pattern \(string, default "#### \(\\\\-\?\[0-9\\\\\.\\\\,\]\+\)"\)/m);
  const list = await tlab('grade', '--list', '--json');
  const graders = JSON.parse(list.stdout);
  assert.ok(graders.length >= 11);
  assert.deepEqual(
    graders.find((g: { name: string }) => g.name === 'numeric').options.map((o: { name: string }) => o.name),
    ['abs_tol', 'rel_tol', 'extract', 'percent'],
  );
});
