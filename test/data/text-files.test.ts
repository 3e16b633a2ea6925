// Edge cases of the text readers and of task rows read back (issue 9 #10).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildTasksFromFile } from '../../src/data/build/build-task.ts';
import { TaskConfigSchema } from '../../src/data/config.ts';
import { loadTaskSplit, readTaskSplit } from '../../src/data/read.ts';
import { openSource } from '../../src/data/sources/open-source.ts';
import type { DataSource } from '../../src/data/sources/types.ts';
import { tempDir } from './helpers.ts';

const open = (dataset: string, baseDir: string, mode: 'streaming' | 'cached') =>
  openSource(TaskConfigSchema.parse({ dataset, mode }), {
    baseDir,
    file: 'config.yaml',
    taskPath: ['tasks', 't'],
  });

async function rows(source: DataSource, split = 'train'): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const r of source.rows(split)) out.push(r.row);
  return out;
}

test('a CSV with an unterminated quote is an error naming the file and the line the quote opened on', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'train.csv'), 'id,text\n1,"fine"\n2,"never closed\n3,swallowed\n4,too\n');
    for (const mode of ['streaming', 'cached'] as const)
      await assert.rejects(
        open('train.csv', dir, mode),
        /^TlabError: train\.csv: line 3: a quoted field opened on this line is never closed$/m,
        mode,
      );
    // Quotes that close, escaped quotes and newlines inside quotes still read as before.
    writeFileSync(join(dir, 'ok.csv'), 'id,text\r\n1,"a ""b"", c"\r\n2,"two\nlines"\r\n');
    const source = await open('ok.csv', dir, 'cached');
    assert.deepEqual(await rows(source), [
      { id: '1', text: 'a "b", c' },
      { id: '2', text: 'two\nlines' },
    ]);
    await source.close();
  } finally {
    cleanup();
  }
});

test('JSONL, JSON arrays and CSV with a UTF-8 byte-order mark read like files without one', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'a.jsonl'), '\uFEFF{"id":"x","v":1}\n{"id":"y","v":2}\n');
    writeFileSync(join(dir, 'b.json'), '\uFEFF[{"id":"x","v":1},{"id":"y","v":2}]');
    writeFileSync(join(dir, 'c.csv'), '\uFEFFid,v\nx,1\ny,2\n');
    for (const mode of ['streaming', 'cached'] as const)
      for (const file of ['a.jsonl', 'b.json', 'c.csv']) {
        const source = await open(file, dir, mode);
        const got = await rows(source);
        assert.deepEqual(
          got.map((r) => r.id),
          ['x', 'y'],
          `${file} ${mode}`,
        );
        assert.deepEqual(
          source.columns,
          ['id', 'v'],
          `${file} ${mode}: the first column is 'id', not '\\uFEFFid'`,
        );
        await source.close();
      }
  } finally {
    cleanup();
  }
});

test('task rows read back are validated: a bad row is an error with the file, line and field', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'rows.jsonl'), '{"q":"1+1","a":"2"}\n{"q":"2+2","a":"4"}\n{"q":"3+3","a":"6"}\n');
    writeFileSync(
      join(dir, 'task.yaml'),
      'tasks:\n  sums:\n    dataset: rows.jsonl\n    user_prompt: "{q}"\n    assistant_text_column: a\n',
    );
    await buildTasksFromFile(join(dir, 'task.yaml'), { outDir: join(dir, 'out'), quiet: true });
    const task = join(dir, 'out', 'sums');
    const good = await loadTaskSplit(task, 'train');
    assert.equal(good.length, 3, 'rows the builder wrote validate');
    const file = join(task, 'train.jsonl');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const broken = (edit: (row: Record<string, unknown>) => void): string => {
      const row = JSON.parse(lines[1]);
      edit(row);
      return [lines[0], JSON.stringify(row), lines[2]].join('\n');
    };
    const cases: [string, (row: Record<string, unknown>) => void, RegExp][] = [
      ['no uid', (r) => delete r.uid, /:2: uid: /],
      [
        'a bad role',
        (r) => ((r.messages as { role: string }[])[0].role = 'robot'),
        /:2: messages\.0\.role: /,
      ],
      [
        'a part without text',
        (r) => delete (r.messages as { content: { text?: string }[] }[])[0].content[0].text,
        /:2: messages\.0\.content\.0\.text: /,
      ],
      ['no metadata', (r) => delete r.metadata, /:2: metadata: /],
    ];
    for (const [what, edit, want] of cases) {
      writeFileSync(file, broken(edit));
      await assert.rejects(loadTaskSplit(task, 'train'), (e: Error) => {
        assert.ok(e.message.startsWith(`${file}:2: `), `${what}: ${e.message}`);
        assert.match(e.message, want, what);
        return true;
      });
    }
    writeFileSync(file, `\uFEFF${lines.join('\n')}\n`);
    let n = 0;
    for await (const _ of readTaskSplit(task, 'train')) n++;
    assert.equal(n, 3, 'a byte-order mark on the first row is no error');
  } finally {
    cleanup();
  }
});
