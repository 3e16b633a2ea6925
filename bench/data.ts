/**
 * Task-build throughput: a 100k-row Parquet source in Hugging Face layout (an image struct per row, each a
 * distinct small PNG, plus question/answer/id columns) built into a task twice, in streaming mode ("ours")
 * and in cached mode (the reference: every shard materialised first). Each build runs in its own process so
 * its peak RSS is its own. Prints rows/s and peak RSS, then one JSON line.
 *
 *   npm run bench -- data [--rows 100000]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { parquetWriteFile } from 'hyparquet-writer';
import { buildTasksFromFile } from '../src/data/build/build-task.ts';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const rowsArg = args.indexOf('--rows');
const ROWS = rowsArg >= 0 ? Number(args[rowsArg + 1]) : 100_000;

/** A tiny PNG encoder for fixture generation only (sharp costs ~0.6 ms per image; this ~20 us). */
function png(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): Uint8Array {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw.set(pixel(x, y), y * (width * 3 + 1) + 1 + x * 3);
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(
    Buffer.concat([
      sig,
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw, { level: 1 })),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
}

function makeSource(dir: string, rows: number): void {
  const marker = join(dir, `.done-${rows}`);
  if (existsSync(marker)) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  const shards = 4;
  const per = Math.ceil(rows / shards);
  for (let s = 0; s < shards; s++) {
    const start = s * per;
    const n = Math.min(per, rows - start);
    const ids = Array.from({ length: n }, (_, k) => `row-${start + k}`);
    parquetWriteFile({
      filename: join(
        dir,
        'data',
        `train-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.parquet`,
      ),
      rowGroupSize: 1000,
      schema: [
        { name: 'root', num_children: 4 },
        { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'question', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'answer', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'image', repetition_type: 'OPTIONAL', num_children: 2 },
        { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
        { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ],
      columnData: [
        { name: 'id', data: ids },
        { name: 'question', data: ids.map((_, k) => `Which quadrant of image ${start + k} is brightest?`) },
        {
          name: 'answer',
          data: ids.map((_, k) => ['top-left', 'top-right', 'bottom-left', 'bottom-right'][(start + k) % 4]),
        },
        {
          name: 'image',
          data: ids.map((_, k) => {
            const i = start + k;
            return {
              bytes: png(32, 32, (x, y) => [(x * 8 + i) & 255, (y * 8 + (i >> 8)) & 255, (i >> 16) * 40]),
              path: `img-${i}.png`,
            };
          }),
        },
      ],
    });
  }
  writeFileSync(marker, '');
}

async function child(mode: 'streaming' | 'cached', source: string, out: string): Promise<void> {
  const config = join(out, '..', `bench-${mode}.yaml`);
  writeFileSync(
    config,
    `tasks:\n  bench:\n    dataset: ${source}\n    mode: ${mode}\n    user_prompt: "{question}"\n    image_column: image\n    assistant_text_column: answer\n    label_column: answer\n    uid_column: id\n`,
  );
  const start = performance.now();
  const [result] = await buildTasksFromFile(config, { outDir: out, quiet: true });
  const seconds = (performance.now() - start) / 1000;
  const rows = result.splits.train;
  process.stdout.write(
    `${JSON.stringify({ rows, seconds, peak_rss_mb: (process.resourceUsage().maxRSS * 1024) / 2 ** 20 })}\n`,
  );
}

async function main(): Promise<void> {
  if (args[0] === '--child') return child(args[1] as 'streaming' | 'cached', args[2], args[3]);
  const work = join(root, 'bench/out/data');
  const source = join(work, `source-${ROWS}`);
  const t0 = performance.now();
  makeSource(source, ROWS);
  console.log(
    `source: ${ROWS} rows, 4 Parquet shards with a 32x32 PNG per row (${((performance.now() - t0) / 1000).toFixed(1)} s to prepare)`,
  );
  const runs: Record<string, { rows: number; seconds: number; peak_rss_mb: number }> = {};
  for (const mode of ['streaming', 'cached'] as const) {
    const out = join(work, `out-${mode}`);
    rmSync(out, { recursive: true, force: true });
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/data.ts', '--child', mode, source, out],
      { cwd: root, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`${mode} build failed: ${r.stderr}`);
    runs[mode] = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    const { rows, seconds, peak_rss_mb } = runs[mode];
    console.log(
      `${mode.padEnd(9)} ${rows} rows in ${seconds.toFixed(1)} s: ${(rows / seconds).toFixed(0)} rows/s, peak RSS ${peak_rss_mb.toFixed(0)} MB`,
    );
    rmSync(out, { recursive: true, force: true });
  }
  const ours = runs.streaming.rows / runs.streaming.seconds;
  const reference = runs.cached.rows / runs.cached.seconds;
  console.log(
    JSON.stringify({
      bench: 'data',
      ours: Math.round(ours),
      reference: Math.round(reference),
      unit: 'rows/s',
      ratio: Number((ours / reference).toFixed(3)),
      rows: ROWS,
      peak_rss_mb: {
        streaming: Math.round(runs.streaming.peak_rss_mb),
        cached: Math.round(runs.cached.peak_rss_mb),
      },
    }),
  );
}

await main();
