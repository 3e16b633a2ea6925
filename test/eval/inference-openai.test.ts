/**
 * The OpenAI-compatible client against a fake server (a tiny node:http server whose answers each test scripts):
 * request layout, retries with backoff on 429/5xx and network errors, timeouts, 4xx messages, the concurrency
 * limit, and log-likelihood from echo + logprobs answers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import sharp from 'sharp';
import { encodePng } from '../../src/data/images/codec.ts';
import { OpenAiBackend, type OpenAiBackendOptions } from '../../src/eval/inference/openai-backend.ts';
import { GREEDY, type InferenceMessage } from '../../src/eval/inference/types.ts';
import { TlabError } from '../../src/util/errors.ts';
import { chatTokenizer } from './inference-fixture.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | null;
}

type Handler = (seen: Seen, res: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler;
let seen: Seen[];

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const chatAnswer = (content: string, finish = 'stop') => ({
  id: 'x',
  object: 'chat.completion',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
  usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
});

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const s: Seen = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: text ? JSON.parse(text) : null,
      };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  seen = [];
  handler = (_s, res) => json(res, 200, chatAnswer('ok'));
});

const backend = (extra: Partial<OpenAiBackendOptions> = {}) =>
  new OpenAiBackend({ baseUrl: `${url}/v1`, model: 'm', retryBaseMs: 1, retryMaxMs: 5, ...extra });
const user = (text: string): InferenceMessage[] => [{ role: 'user', content: [{ type: 'text', text }] }];

describe('chat requests', () => {
  test('text, sampling fields, response_format and the API key in OpenAI/vLLM layout', async () => {
    const b = backend({ apiKey: 'sekret' });
    handler = (_s, res) => json(res, 200, chatAnswer('{"a": 1}', 'length'));
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    const [r] = await b.chat([
      {
        messages: [
          { role: 'system', content: [{ type: 'text', text: 'be brief' }] },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'one ' },
              { type: 'text', text: 'two' },
            ],
          },
        ],
        params: {
          maxTokens: 12,
          temperature: 0.7,
          topP: 0.9,
          topK: 5,
          seed: 42,
          stop: ['\n'],
          responseFormat: { type: 'json_schema', name: 'obj', schema },
        },
      },
    ]);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].url, '/v1/chat/completions');
    assert.equal(seen[0].headers.authorization, 'Bearer sekret');
    assert.deepEqual(seen[0].body, {
      model: 'm',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'one two' },
      ],
      max_tokens: 12,
      temperature: 0.7,
      top_p: 0.9,
      seed: 42,
      top_k: 5,
      stop: ['\n'],
      response_format: { type: 'json_schema', json_schema: { name: 'obj', schema } },
    });
    assert.equal(r.text, '{"a": 1}');
    assert.equal(r.finishReason, 'length');
    assert.equal(r.promptTokens, 7);
    assert.equal(r.completionTokens, 3);
    assert.deepEqual(r.format, { valid: true, error: null });
    // Greedy defaults: no top_k (off), no stop list, no response_format.
    await b.chat([{ messages: user('x'), params: GREEDY }]);
    assert.deepEqual(Object.keys(seen[1].body!).sort(), [
      'max_tokens',
      'messages',
      'model',
      'seed',
      'temperature',
      'top_p',
    ]);
  });

  test('images travel as base64 data URLs with the media type of their bytes', async () => {
    const png = await encodePng({
      data: new Uint8Array(2 * 2 * 3).fill(200),
      width: 2,
      height: 2,
      channels: 3,
    });
    const dir = mkdtempSync(join(tmpdir(), 'tlab-openai-img-'));
    try {
      const jpegPath = join(dir, 'named-like-a.png'); // the name lies: the bytes are JPEG
      writeFileSync(jpegPath, await sharp(Buffer.from(png)).jpeg().toBuffer());
      const b = backend({ maxImages: 2 });
      await b.chat([
        {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'image', image: { bytes: png, mediaType: 'image/png' } },
                { type: 'text', text: 'and' },
                { type: 'image', image: { path: jpegPath } },
              ],
            },
          ],
          params: GREEDY,
        },
      ]);
      const content = (
        seen[0].body!.messages as { content: { type: string; image_url?: { url: string } }[] }[]
      )[0].content;
      assert.deepEqual(
        content.map((p) => p.type),
        ['image_url', 'text', 'image_url'],
      );
      const first = content[0].image_url!.url;
      assert.ok(first.startsWith('data:image/png;base64,'));
      assert.deepEqual(new Uint8Array(Buffer.from(first.split(',')[1], 'base64')), png);
      assert.ok(content[2].image_url!.url.startsWith('data:image/jpeg;base64,/9j/'));
      // More images than the model takes: refused before anything is sent.
      const count = seen.length;
      await assert.rejects(
        backend().chat([
          {
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'image', image: { bytes: png, mediaType: 'image/png' } },
                  { type: 'image', image: { bytes: png, mediaType: 'image/png' } },
                ],
              },
            ],
            params: GREEDY,
          },
        ]),
        /request 0 has 2 images; the model takes at most 1 per request/,
      );
      assert.equal(seen.length, count);
      await assert.rejects(
        backend().chat([
          {
            messages: [
              { role: 'user', content: [{ type: 'image', image: { path: join(dir, 'missing.png') } }] },
            ],
            params: GREEDY,
          },
        ]),
        /cannot read image .*missing\.png \(ENOENT\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('retries, timeouts and errors', () => {
  test('429 and 503 are retried (Retry-After honoured) until an answer comes', async () => {
    const statuses = [429, 503];
    handler = (_s, res) => {
      const status = statuses.shift();
      if (status) json(res, status, { error: { message: 'busy' } }, { 'retry-after': '0' });
      else json(res, 200, chatAnswer('finally'));
    };
    const [r] = await backend({ maxRetries: 3 }).chat([{ messages: user('x'), params: GREEDY }]);
    assert.equal(r.text, 'finally');
    assert.equal(seen.length, 3);
  });

  test('retries give up after maxRetries with the status, the server message and the attempt count', async () => {
    handler = (_s, res) => json(res, 503, { error: { message: 'overloaded, try later' } });
    await assert.rejects(
      backend({ maxRetries: 2 }).chat([{ messages: user('x'), params: GREEDY }]),
      (e: Error) =>
        e instanceof TlabError &&
        /openai backend 'm' at http:\/\/127\.0\.0\.1:\d+: POST .*\/v1\/chat\/completions: HTTP 503: overloaded, try later \(after 3 attempts\)/.test(
          e.message,
        ),
    );
    assert.equal(seen.length, 3);
  });

  test('a 4xx fails at once and carries the server message (OpenAI and vLLM layouts)', async () => {
    handler = (_s, res) =>
      json(res, 400, {
        object: 'error',
        message: "This model's maximum context length is 2048 tokens",
        type: 'BadRequestError',
        code: 400,
      });
    await assert.rejects(
      backend({ maxRetries: 3 }).chat([{ messages: user('x'), params: GREEDY }]),
      /HTTP 400: This model's maximum context length is 2048 tokens$/,
    );
    assert.equal(seen.length, 1);
    handler = (_s, res) =>
      json(res, 404, { error: { message: 'The model `m` does not exist.', type: 'NotFoundError' } });
    await assert.rejects(
      backend().chat([{ messages: user('x'), params: GREEDY }]),
      /HTTP 404: The model `m` does not exist\.$/,
    );
    handler = (_s, res) => {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('Unauthorized');
    };
    await assert.rejects(
      backend().chat([{ messages: user('x'), params: GREEDY }]),
      /HTTP 401: Unauthorized$/,
    );
  });

  test('a server that never answers times out, per attempt', async () => {
    handler = () => {}; // hold the request open
    await assert.rejects(
      backend({ timeoutMs: 100, maxRetries: 1 }).chat([{ messages: user('x'), params: GREEDY }]),
      /no answer within the timeout of 100 ms \(after 2 attempts\)/,
    );
    assert.equal(seen.length, 2);
  });

  test('network errors (connection refused) are retried, then reported with their cause', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const b = new OpenAiBackend({
      baseUrl: `http://127.0.0.1:${port}`,
      model: 'm',
      maxRetries: 1,
      retryBaseMs: 1,
    });
    await assert.rejects(
      b.chat([{ messages: user('x'), params: GREEDY }]),
      /network error: fetch failed \(ECONNREFUSED\) \(after 2 attempts\)/,
    );
  });

  test('at most `concurrency` requests are in flight', async () => {
    let inFlight = 0;
    let most = 0;
    handler = (_s, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        json(res, 200, chatAnswer('ok'));
      }, 20);
    };
    const done: number[] = [];
    const results = await backend({ concurrency: 3 }).chat(
      Array.from({ length: 10 }, (_, i) => ({ messages: user(`q${i}`), params: GREEDY })),
      (n, total) => {
        assert.equal(total, 10);
        done.push(n);
      },
    );
    assert.equal(results.length, 10);
    assert.equal(most, 3);
    assert.deepEqual(done, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  test('bad options and base URLs are clear errors', () => {
    assert.throws(() => backend({ concurrency: 0 }), /concurrency: expected a positive integer, got 0/);
    assert.throws(() => backend({ timeoutMs: -1 }), /timeoutMs: expected a number >= 1/);
    assert.throws(
      () => new OpenAiBackend({ baseUrl: 'localhost:8000', model: 'm' }),
      /not a URL|valid protocols/,
    );
    assert.throws(() => backend({ loglikPrompts: 'tokens' }), /loglikPrompts 'tokens' needs the tokenizer/);
  });
});

describe('connect', () => {
  test('reads the model card (context length, images) and refuses a model the server does not serve', async () => {
    handler = (_s, res) =>
      json(res, 200, {
        object: 'list',
        data: [{ id: 'm', max_model_len: 2048, max_images: 3 }, { id: 'other' }],
      });
    const b = await OpenAiBackend.connect({ baseUrl: url, model: 'm' });
    assert.deepEqual(b.capabilities, { maxImages: 3, loglik: false, contextLength: 2048 });
    assert.equal(seen[0].url, '/v1/models');
    await assert.rejects(
      OpenAiBackend.connect({ baseUrl: url, model: 'absent' }),
      (e: Error) =>
        e instanceof TlabError &&
        /does not serve model 'absent'/.test(e.message) &&
        /m, other/.test((e as TlabError).details!),
    );
  });
});

describe('log-likelihood through /v1/completions', () => {
  /** Echo answer for the prompt "ab c😀d": tokens "ab", " c", "😀", "d", then the generated "X". */
  const echo = {
    choices: [
      {
        index: 0,
        text: 'ab c😀dX',
        logprobs: {
          tokens: ['ab', ' c', '😀', 'd', 'X'],
          token_logprobs: [null, -1, -0.25, -2, -0.5],
          top_logprobs: [null, { ' c': -1 }, { '😀': -0.25 }, { e: -0.1, d: -2 }, { X: -0.5 }],
          text_offset: [0, 2, 4, 5, 6],
        },
        finish_reason: 'length',
      },
    ],
    usage: { prompt_tokens: 4, completion_tokens: 1 },
  };

  test('sums the prompt tokens from the context end on (text_offset in code points), greedy from top_logprobs', async () => {
    handler = (_s, res) => json(res, 200, echo);
    const b = backend();
    const results = await b.loglik([
      { context: 'ab', continuation: ' c😀d' },
      { context: 'ab c', continuation: '😀' },
      { context: 'ab c😀', continuation: 'd' },
    ]);
    assert.deepEqual(seen[0].body, {
      model: 'm',
      prompt: 'ab c😀d',
      max_tokens: 1,
      temperature: 0,
      logprobs: 1,
      echo: true,
      add_special_tokens: false,
    });
    assert.deepEqual(results[0], { logprob: -3.25, greedy: false, tokens: 3 });
    // The fake answers every prompt with the same tokens. The generated "X" is past usage.prompt_tokens and never
    // counts; "ab c" is 4 code points, so the tokens at offsets >= 4 are 😀 and d; "ab c😀" is 5 code points (6
    // UTF-16 units, which would find no token), leaving d.
    assert.deepEqual(results[1], { logprob: -2.25, greedy: false, tokens: 2 });
    assert.deepEqual(results[2], { logprob: -2, greedy: false, tokens: 1 });
    // The trailing space of the context moves to the continuation: same prompt, context "ab".
    await b.loglik([{ context: 'ab ', continuation: 'c😀d' }]);
    assert.equal(seen[3].body!.prompt, 'ab c😀d');
  });

  test('conversation contexts need the tokenizer; with it they are rendered with the chat template', async () => {
    // One token per code point (or per id), each with log-probability -0.5.
    handler = (s, res) => {
      const prompt = s.body!.prompt as string | number[];
      const tokens = typeof prompt === 'string' ? [...prompt] : prompt.map(String);
      json(res, 200, {
        choices: [
          {
            logprobs: {
              tokens,
              token_logprobs: tokens.map((_, i) => (i === 0 ? null : -0.5)),
              top_logprobs: tokens.map((t, i) => (i === 0 ? null : { [t]: -0.5 })),
              text_offset: tokens.map((_, i) => i),
            },
          },
        ],
        usage: { prompt_tokens: tokens.length },
      });
    };
    await assert.rejects(
      backend().loglik([{ messages: user('hi'), continuation: 'x' }]),
      /scoring a conversation needs its chat template rendered locally/,
    );
    await assert.rejects(
      backend().loglik([{ context: '', continuation: 'x' }]),
      /empty context needs the model's BOS or EOS token/,
    );
    const b = backend({ tokenizer: chatTokenizer });
    assert.equal(b.capabilities.loglik, true);
    const [chat] = await b.loglik([{ messages: user('hi'), continuation: 'abc' }]);
    assert.equal(seen[0].body!.prompt, '<|user|>hi<|end|><|assistant|>abc');
    assert.deepEqual(chat, { logprob: -1.5, greedy: true, tokens: 3 });
    // Token mode sends the ids of the in-process pairs and counts from the context's token count.
    const [ids] = await backend({ tokenizer: chatTokenizer, loglikPrompts: 'tokens' }).loglik([
      { context: 'ab', continuation: 'cd' },
    ]);
    assert.deepEqual(seen[1].body!.prompt, chatTokenizer.encode('abcd', { addSpecialTokens: false }));
    assert.deepEqual(ids, { logprob: -1, greedy: true, tokens: 2 });
  });

  test('an answer without logprobs says what the server must support', async () => {
    handler = (_s, res) => json(res, 200, { choices: [{ text: 'x' }] });
    await assert.rejects(
      backend().loglik([{ context: 'a', continuation: 'b' }]),
      /must support echo with logprobs/,
    );
  });
});
