import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteFile } from 'hyparquet-writer';
import sharp from 'sharp';
import { tempDir } from './helpers.ts';

/**
 * Budget for memory growth during the build (RSS peak minus RSS before it). Measured: ~19 MB for an 8-row
 * file, a plateau of ~55 MB from 200 rows on (V8 collects external buffers in ~64 MB steps), so the bound
 * holds for any file size; the file below is 10x the budget.
 */
const LIMIT_MB = 80;

function buildInChild(file: string, out: string, mode: string): { growthMb: number; rows: number } {
  const child = join(import.meta.dirname, 'stream-child.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, file, out, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { baseline, peak, rows } = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  return { growthMb: (peak - baseline) / 2 ** 20, rows };
}

test(`streaming a Parquet source 10x larger than ${LIMIT_MB} MB stays under ${LIMIT_MB} MB`, async () => {
  const { dir, cleanup } = tempDir();
  try {
    // ~1 MB incompressible PNG per row, PLAIN-encoded (no dictionary) and uncompressed: the file really is big.
    const png = new Uint8Array(
      await sharp(randomBytes(570 * 570 * 3), { raw: { width: 570, height: 570, channels: 3 } })
        .png({ compressionLevel: 0 })
        .toBuffer(),
    );
    const rows = Math.ceil((10.5 * LIMIT_MB * 2 ** 20) / png.length);
    const file = join(dir, 'big.parquet');
    parquetWriteFile({
      filename: file,
      codec: 'UNCOMPRESSED',
      statistics: false,
      rowGroupSize: 4,
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'image', repetition_type: 'OPTIONAL', num_children: 2 },
        { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
        { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ],
      columnData: [
        { name: 'id', data: Array.from({ length: rows }, (_, i) => `r${i}`) },
        {
          name: 'image',
          data: Array.from({ length: rows }, () => ({ bytes: png, path: 'noise.png' })),
          encoding: 'PLAIN',
        },
      ],
    });
    const size = statSync(file).size;
    assert.ok(size >= 10 * LIMIT_MB * 2 ** 20, `source is ${(size / 2 ** 20).toFixed(0)} MB`);

    const streaming = buildInChild(file, join(dir, 'out-s'), 'streaming');
    assert.equal(streaming.rows, rows);
    assert.ok(streaming.growthMb < LIMIT_MB, `streaming grew by ${streaming.growthMb.toFixed(1)} MB`);
  } finally {
    cleanup();
  }
});
