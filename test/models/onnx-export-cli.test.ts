/** `tlab export` on the command line: variants by flag, --static with the model's context as its length, clear refusals. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import ort from 'onnxruntime-node';
import { tinyFolder } from './export-helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'tlab-export-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const src = join(root, 'src');
const folder = tinyFolder(src, 'qwen2', 4);
const tlab = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/tlab.js', 'export', ...args], { encoding: 'utf8' });

test('--dtype and --quantize choose the files; the JSON lists each with its inputs', () => {
  const out = join(root, 'variants');
  const r = tlab(src, '--out', out, '--dtype', 'fp16', '--quantize', 'q4,uint8', '--json');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(readdirSync(join(out, 'onnx')).sort(), [
    'model_fp16.onnx',
    'model_q4.onnx',
    'model_uint8.onnx',
  ]);
  assert.deepEqual(
    result.onnx.map((o: { variant: string }) => o.variant),
    ['fp16', 'q4', 'uint8'],
  );
  assert.ok(result.onnx[0].inputs.includes('past_key_values.1.value'));
  assert.ok(existsSync(join(out, 'tokenizer.json')) && existsSync(join(out, 'config.json')));
});

test("--static defaults to the model's context as its sequence length (the old fixed 128 failed on short contexts)", async () => {
  const out = join(root, 'static');
  const r = tlab(src, '--out', out, '--static', '--json');
  assert.equal(r.status, 0, r.stderr);
  const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
  try {
    const meta = session.inputMetadata.find((m) => m.name === 'input_ids') as unknown as { shape: number[] };
    assert.deepEqual(meta.shape, [
      1,
      (folder.config as { max_position_embeddings: number }).max_position_embeddings,
    ]);
  } finally {
    await session.release();
  }
});

test('flags that do not fit the export mode are refused with one line, and nothing is written', () => {
  const cases: [string[], RegExp][] = [
    [['--static', '--quantize', 'q4'], /^error: --static writes float32 weights only/],
    [['--batch', '2'], /^error: --batch applies to --static exports/],
    [
      ['--quantize', 'q3'],
      /^error: option '--quantize <list>' argument 'q3' is invalid\. unknown quantization 'q3'; valid: int8, q8, uint8, q4/,
    ],
  ];
  for (const [flags, message] of cases) {
    const out = join(root, `refused-${flags.join('')}`);
    const r = tlab(src, '--out', out, ...flags);
    assert.equal(r.status, 1, flags.join(' '));
    assert.match(r.stderr.split('\n')[0], message);
    assert.equal(existsSync(out), false, `${flags.join(' ')} wrote nothing`);
  }
});
