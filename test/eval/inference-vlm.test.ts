/**
 * A LLaVA-style VLM through the in-process backend and `tlab serve`: images preprocessed with the folder's
 * processor (here the ViT-style default) reach the Generator and the log-likelihood scorer; the same image sent as
 * a data URL or a local file gives the same answer through the server; more images than fit are refused.
 * The model is the LLaVA fixture of test/fixtures/models (PyTorch-checked logits), with a character tokenizer.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodePng } from '../../src/data/images/codec.ts';
import { preprocessImageBytes } from '../../src/data/images/preprocess.ts';
import { LocalBackend } from '../../src/eval/inference/local-backend.ts';
import { OpenAiBackend } from '../../src/eval/inference/openai-backend.ts';
import { GREEDY, type InferenceMessage } from '../../src/eval/inference/types.ts';
import { loglikelihoodTokens } from '../../src/eval/loglik.ts';
import { type ServerHandle, startServer } from '../../src/eval/serve/server.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { SIMPLE_CHAT_TEMPLATE } from '../../src/train/run-training.ts';
import { Rng } from '../../src/util/random.ts';
import { fixtureDir } from '../models/helpers.ts';

const tokenizer = CharTokenizer.build({
  characters: 'abcdefghijklmnopqrstuvwxyz ?',
  extraSpecialTokens: ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<image>'],
  chatTemplate: SIMPLE_CHAT_TEMPLATE,
});

let dir: string;
let local: LocalBackend;
let server: ServerHandle;
let pngs: Uint8Array[];

/** A random RGB image of a size the processor must resize (20 x 24 → 16 x 16). */
async function randomPng(seed: number): Promise<Uint8Array> {
  const rng = new Rng(seed);
  const data = Uint8Array.from({ length: 20 * 24 * 3 }, () => rng.int(256));
  return encodePng({ data, width: 24, height: 20, channels: 3 });
}

/** The ViT-style processor written out (HF's ViTImageProcessor defaults at the tower's 16 x 16). */
async function expectedPixels(png: Uint8Array): Promise<Float32Array> {
  const t = await preprocessImageBytes(png, {
    resize: { height: 16, width: 16 },
    resample: 3,
    rescale: 1 / 255,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  });
  return t.data;
}

const withImages = (text: string, images: Uint8Array[]): InferenceMessage[] => [
  {
    role: 'user',
    content: [
      ...images.map((bytes) => ({ type: 'image' as const, image: { bytes, mediaType: 'image/png' } })),
      { type: 'text', text },
    ],
  },
];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tlab-vlm-'));
  const fixture = fixtureDir('llava_llama_clip_mlp');
  const config = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8'));
  // The weights do not care which id marks images: use the tokenizer's <image>.
  config.image_token_id = tokenizer.tokenToId('<image>');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  copyFileSync(join(fixture, 'model.safetensors'), join(dir, 'model.safetensors'));
  tokenizer.save(dir);
  pngs = await Promise.all([1, 2, 3, 4].map(randomPng));
  writeFileSync(join(dir, 'image.png'), pngs[0]);
  local = LocalBackend.open(dir);
  server = await startServer({ models: [{ dir, name: 'vlm' }], port: 0, allowedLocalMediaPaths: [dir] });
});
after(async () => {
  await server.close();
  await local.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('VLM in-process', () => {
  test('capabilities: as many 16-token images as the 64-token context leaves room for', () => {
    assert.deepEqual(local.capabilities, { maxImages: 3, loglik: true, contextLength: 64 });
  });

  test('chat with an image equals the uncached Generator fed the processor pixels', async () => {
    const questions = ['what is it', 'what?', 'is it a cat'];
    const got = await local.chat(
      questions.map((q) => ({ messages: withImages(q, [pngs[0]]), params: { ...GREEDY, maxTokens: 8 } })),
    );
    const pixels = await expectedPixels(pngs[0]);
    const want = await local.local.generator.generate(
      questions.map((q) => ({
        ids: tokenizer.encode(`<|user|><image>${q}<|end|><|assistant|>`, { addSpecialTokens: false }),
        images: [pixels],
      })),
      { maxNewTokens: 8, stopTokenIds: local.local.stopIds, useCache: false },
    );
    got.forEach((g, i) => {
      assert.equal(g.text, want[i].text, questions[i]);
      assert.equal(g.promptTokens, want[i].promptTokens);
      assert.equal(g.promptTokens, tokenizer.encode(questions[i]).length + 4 + 15); // the placeholder expands to 16
    });
  });

  test('loglik with an image equals the scorer fed the processor pixels, and depends on the image', async () => {
    const requests = [0, 1].map((k) => ({
      messages: withImages('what is it', [pngs[k]]),
      continuation: 'a cat',
    }));
    const got = await local.loglik(requests);
    const context = tokenizer.encode('<|user|><image>what is it<|end|><|assistant|>', {
      addSpecialTokens: false,
    });
    const want = await loglikelihoodTokens(
      local.local.generator.runner,
      await Promise.all(
        [0, 1].map(async (k) => ({
          context,
          continuation: tokenizer.encode('a cat', { addSpecialTokens: false }),
          images: [await expectedPixels(pngs[k])],
        })),
      ),
    );
    got.forEach((g, i) => {
      assert.ok(Math.abs(g.logprob - want[i].loglik) < 1e-5, `${g.logprob} vs ${want[i].loglik}`);
      assert.equal(g.tokens, 5);
    });
    assert.ok(Math.abs(got[0].logprob - got[1].logprob) > 1e-4, 'another image, another log-likelihood');
  });

  test('more images than fit, and undecodable images, are TlabErrors naming the request', async () => {
    await assert.rejects(
      local.chat([{ messages: withImages('x', pngs), params: GREEDY }]),
      /4 images, but the model .* takes at most 3 per request/,
    );
    const broken: InferenceMessage[] = [
      {
        role: 'user',
        content: [{ type: 'image', image: { bytes: pngs[0].slice(0, 40), mediaType: 'image/png' } }],
      },
    ];
    await assert.rejects(
      local.chat([{ messages: broken, params: GREEDY }]),
      /request 0 image 0: cannot decode the image/,
    );
  });
});

describe('VLM through tlab serve', () => {
  test('data URLs and allowed local files give the in-process answers; /v1/models says 3 images', async () => {
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
      data: { max_images: number }[];
    };
    assert.equal(models.data[0].max_images, 3);
    const remote = await OpenAiBackend.connect({ baseUrl: server.url, model: 'vlm' });
    assert.equal(remote.capabilities.maxImages, 3);
    const requests = [
      { messages: withImages('what is it', [pngs[0]]), params: { ...GREEDY, maxTokens: 8 } },
      { messages: withImages('and these', [pngs[1], pngs[2]]), params: { ...GREEDY, maxTokens: 8 } },
      {
        messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'no image' }] }],
        params: { ...GREEDY, maxTokens: 8 },
      },
    ];
    const want = await local.chat(requests);
    const got = await remote.chat(requests);
    assert.deepEqual(
      got.map((g) => g.text),
      want.map((w) => w.text),
    );
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'vlm',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `file://${join(dir, 'image.png')}` } },
              { type: 'text', text: 'what is it' },
            ],
          },
        ],
        max_tokens: 8,
        temperature: 0,
      }),
    });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.choices[0].message.content, want[0].text);
    // OpenAI's /v1/completions has no image input, so image contexts cannot be scored over HTTP.
    const scorer = new OpenAiBackend({ baseUrl: server.url, model: 'vlm', tokenizer });
    await assert.rejects(
      scorer.loglik([{ messages: withImages('x', [pngs[0]]), continuation: 'y' }]),
      /\/v1\/completions takes no images/,
    );
    await remote.close();
  });

  test('local files outside the allowed folder are refused', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'vlm',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: '/etc/hostname' } }] }],
      }),
    });
    assert.equal(res.status, 400);
    const error = ((await res.json()) as { error: { message: string; param: string } }).error;
    assert.equal(error.param, 'messages.0.content.0.image_url.url');
    assert.match(error.message, /outside the allowed local media paths/);
  });
});
