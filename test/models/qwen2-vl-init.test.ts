/**
 * `tlab model init`: random-initialised folders of a preset or a config.json load back (tokenizer with the vision
 * tokens at the config's ids, Qwen2-VL's processor), are reproducible per seed, and run end to end: the in-process
 * model takes a chat with two images of different sizes (processor patches, a token count per image) and gives
 * the tokens the Generator gives on the same patches; the 2B preset has Qwen2-VL-2B-Instruct's parameter count.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { loadImageProcessor, prepareVlmImage } from '../../src/data/images/qwen2-vl-processor.ts';
import { Generator } from '../../src/eval/generate.ts';
import { LocalModel } from '../../src/eval/inference/local-model.ts';
import { parseHfConfig } from '../../src/models/hf/configs.ts';
import { initModelFolder, presetConfig } from '../../src/models/hf/init-folder.ts';
import { loadModelFolder } from '../../src/models/hf/model-folder.ts';
import { buildModel, parameterSpecs } from '../../src/models/hf/registry.ts';
import type { Vlm } from '../../src/models/types.ts';

async function png(width: number, height: number, seed: number): Promise<Uint8Array> {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97) % 251;
  const out = await sharp(data, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  return new Uint8Array(out);
}

describe('tlab model init', () => {
  const root = mkdtempSync(join(tmpdir(), 'tlab-init-test-'));
  const dir = join(root, 'tiny');
  initModelFolder(presetConfig('qwen2-vl-tiny'), dir, { seed: 1 });

  test('the qwen2-vl-tiny preset loads: tokenizer specials at the config ids, the processor, the chat template', () => {
    const folder = loadModelFolder(dir);
    assert.equal(folder.kind, 'vlm');
    assert.equal(folder.model.modelType, 'qwen2_vl');
    const tok = folder.tokenizer!;
    assert.equal(tok.tokenToId('<|image_pad|>'), 506);
    assert.equal(tok.tokenToId('<|vision_start|>'), 503);
    assert.equal(tok.tokenToId('<|im_end|>'), 502);
    assert.ok(folder.preprocessorConfig);
    assert.equal(loadImageProcessor(folder.preprocessorConfig!).kind, 'qwen2-vl');
    const ids = tok.encodeChat(
      [{ role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'same?' }] }],
      { addGenerationPrompt: true },
    );
    assert.equal(ids.filter((i) => i === 506).length, 2, 'one placeholder per image');
    assert.equal(ids.filter((i) => i === 503).length, 2, 'each inside <|vision_start|> ... <|vision_end|>');
    assert.match(tok.decode(ids), /^<\|im_start\|>system\n/);
    assert.ok(tok.stopIds.includes(502));
  });

  test('the same seed writes the same weights; another seed other weights', () => {
    const again = join(root, 'again');
    const other = join(root, 'other');
    initModelFolder(presetConfig('qwen2-vl-tiny'), again, { seed: 1 });
    initModelFolder(presetConfig('qwen2-vl-tiny'), other, { seed: 2 });
    const bytes = (d: string) => readFileSync(join(d, 'model.safetensors'));
    assert.ok(bytes(dir).equals(bytes(again)));
    assert.ok(!bytes(dir).equals(bytes(other)));
  });

  test('two images of different sizes through the in-process model = the Generator on the processor patches', async () => {
    const local = LocalModel.load(dir);
    try {
      const a = await png(60, 40, 1);
      const b = await png(30, 90, 2);
      const messages = [
        {
          role: 'user' as const,
          content: [
            { type: 'image' as const, image: { bytes: a, mediaType: 'image/png' } },
            { type: 'image' as const, image: { bytes: b, mediaType: 'image/png' } },
            { type: 'text' as const, text: 'Is the left one wider?' },
          ],
        },
      ];
      const prompt = local.encodeChat(messages, 'messages');
      const [out] = await local.generate([
        { prompt, params: { maxTokens: 5, temperature: 0, topP: 1, topK: 0, stop: [], seed: 0 } },
      ]);
      const folder = loadModelFolder(dir);
      const vlm = folder.model as Vlm;
      const processor = loadImageProcessor(folder.preprocessorConfig!);
      const images = [await prepareVlmImage(a, processor), await prepareVlmImage(b, processor)];
      const counts = images.map((im) => vlm.imageInputs.tokens(im, 'image'));
      assert.notEqual(counts[0], counts[1], 'the two sizes give different token counts');
      const generator = new Generator(vlm, folder.weights, folder.tokenizer!);
      try {
        const [ref] = await generator.generate([{ ids: prompt.ids, images }], {
          maxNewTokens: 5,
          stopTokenIds: local.stopIds,
        });
        assert.deepEqual(out.tokenIds, ref.tokenIds.slice(0, out.tokenIds.length));
        assert.equal(out.promptTokens, ref.promptTokens);
      } finally {
        await generator.release();
      }
    } finally {
      await local.release();
    }
  });

  test("the qwen2-vl-2b preset has Qwen2-VL-2B-Instruct's parameters", () => {
    const config = parseHfConfig(presetConfig('qwen2-vl-2b'));
    const specs = parameterSpecs(buildModel(config, 'vlm'));
    let n = 0;
    for (const s of specs.values()) n += s.shape.reduce((a, b) => a * b, 1);
    // Counted from the shapes: tied embedding, 28 Qwen2 layers, final norm; the vision tower and merger.
    const d = 1536;
    const layer = d * d + d + 2 * (256 * d + 256) + d * d + 3 * d * 8960 + 2 * d;
    const e = 1280;
    const block = 4 * e + 3 * e * e + 3 * e + e * e + e + 2 * e * 4 * e + 4 * e + e;
    const merger = 2 * e + (4 * e) ** 2 + 4 * e + d * 4 * e + d;
    const expected = 151936 * d + 28 * layer + d + e * 3 * 2 * 14 * 14 + 32 * block + merger;
    assert.equal(n, expected);
    assert.ok(n > 2.2e9 && n < 2.22e9, `${n} parameters`);
  });

  test('CLI: --json, an existing folder, an unknown preset, a config.json file', () => {
    const tlab = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/tlab.js', 'model', ...args], { encoding: 'utf8' });
    const out = join(root, 'cli');
    const r = tlab('init', 'gpt2-tiny', '--out', out, '--seed', '3', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).modelType, 'gpt2');
    const again = tlab('init', 'gpt2-tiny', '--out', out);
    assert.equal(again.status, 1);
    assert.match(again.stderr.split('\n')[0], /already holds a model .*--force/);
    const bad = tlab('init', 'qwen9', '--out', join(root, 'x'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.split('\n')[0], /^error: unknown preset 'qwen9'; valid: .*qwen2-vl-2b/);
    const file = join(root, 'config.json');
    writeFileSync(file, JSON.stringify({ ...presetConfig('gpt2-tiny'), n_layer: 1 }));
    const fromFile = tlab('init', file, '--out', join(root, 'from-file'), '--json');
    assert.equal(fromFile.status, 0, fromFile.stderr);
    assert.equal((loadModelFolder(join(root, 'from-file')).model as { numLayers: number }).numLayers, 1);
    const help = tlab('init', '--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: tlab model init/);
  });

  test('cleanup', () => {
    rmSync(root, { recursive: true, force: true });
  });
});
