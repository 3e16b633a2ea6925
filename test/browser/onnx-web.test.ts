/**
 * The exported decoder in a browser: onnxruntime-web (WebAssembly) in Debian's headless Chromium, on a page
 * served from 127.0.0.1, decodes greedily with the KV cache and gives the tokens this project's generator gives
 * (float32 export); the 4-bit variant (MatMulNBits) gives in the browser what onnxruntime-node gives for the same
 * file. The decoding loop (greedy-decode.mjs) is the same code in both runtimes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { Generator } from '../../src/eval/generate.ts';
import type { ModelFolder } from '../../src/models/hf/model-folder.ts';
import { exportPortableFolder } from '../../src/models/onnx-export-folder.ts';
import type { DecoderLm } from '../../src/models/types.ts';
import { tinyFolder } from '../models/export-helpers.ts';
// @ts-expect-error plain ES module shared with the page
import { greedyDecode } from './greedy-decode.mjs';
import { type BrowserSession, browserSkipReason, launchBrowser } from './launch.ts';
import { type StaticServer, serveStatic } from './static-server.ts';

const skip = browserSkipReason();
const root = mkdtempSync(join(tmpdir(), 'tlab-ortweb-'));
const PROMPTS = ['the quick brown', 'hello'];
const NEW_TOKENS = 12;

interface DecodeOptions {
  prompts: number[][];
  padId: number;
  layers: number;
  kvHeads: number;
  headDim: number;
  newTokens: number;
  stopIds: number[];
}

describe('onnxruntime-web in headless Chromium', { skip: skip ?? false }, () => {
  let browser: BrowserSession;
  let server: StaticServer;
  let folder: ModelFolder;
  let options: DecodeOptions;

  before(async () => {
    folder = tinyFolder(join(root, 'src'), 'llama', 5);
    exportPortableFolder(join(root, 'export'), folder, { variants: ['fp32', 'q4'] });
    const m = folder.model as DecoderLm;
    const tok = folder.tokenizer!;
    options = {
      prompts: PROMPTS.map((p) => tok.encode(p)),
      padId: tok.padId ?? tok.eosId ?? 0,
      layers: m.numLayers,
      kvHeads: m.numKvHeads,
      headDim: m.headDim,
      newTokens: NEW_TOKENS,
      stopIds: [...tok.stopIds],
    };
    server = await serveStatic(
      {
        '/ort/': resolve('node_modules/onnxruntime-web/dist'),
        '/model/': join(root, 'export'),
        '/lib/': resolve('test/browser'),
      },
      {
        '/': '<!doctype html><link rel="icon" href="data:,"><title>transferlab onnxruntime-web test</title>',
      },
    );
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs greedyDecode on the page with onnxruntime-web's WebAssembly backend. */
  async function decodeInBrowser(file: string): Promise<{ tokens: number[][]; version: string }> {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/`);
      return await page.evaluate(
        async ({ file, options }) => {
          const ortWeb = await import('/ort/ort.wasm.min.mjs' as string);
          const { greedyDecode: decode } = await import('/lib/greedy-decode.mjs' as string);
          ortWeb.env.wasm.numThreads = 1;
          const bytes = new Uint8Array(await (await fetch(`/model/${file}`)).arrayBuffer());
          const session = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
          const tokens = await decode(ortWeb, session, options);
          await session.release();
          return { tokens, version: ortWeb.env.versions.web as string };
        },
        { file, options },
      );
    } finally {
      await page.close();
    }
  }

  test('the float32 export gives the greedy tokens of this project', async () => {
    const generator = new Generator(folder.model as DecoderLm, folder.weights, folder.tokenizer!);
    let ours: number[][];
    try {
      ours = (await generator.generate(PROMPTS, { maxNewTokens: NEW_TOKENS })).map((g) => g.tokenIds);
    } finally {
      await generator.release();
    }
    const web = await decodeInBrowser('onnx/model.onnx');
    assert.equal(web.version, '1.30.0', 'the onnxruntime-web of this project ran on the page');
    assert.deepEqual(web.tokens, ours);
    assert.ok(
      ours.some((t) => t.length === NEW_TOKENS),
      'a prompt runs to the token limit, so the cache is exercised',
    );
    assert.deepEqual(browser.consoleErrors, []);
  });

  test('the q4 export (MatMulNBits) gives in the browser what onnxruntime-node gives', async () => {
    const session = await ort.InferenceSession.create(join(root, 'export', 'onnx', 'model_q4.onnx'));
    let node: number[][];
    try {
      node = await greedyDecode(ort, session, options);
    } finally {
      await session.release();
    }
    const web = await decodeInBrowser('onnx/model_q4.onnx');
    assert.deepEqual(web.tokens, node);
    assert.deepEqual(browser.consoleErrors, []);
  });
});
