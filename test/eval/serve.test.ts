/**
 * `tlab serve` in this process (startServer): the endpoints, the same greedy answers and log-likelihoods through
 * the OpenAI backend as in-process, echo + logprobs against a host log-softmax, streaming, micro-batching across
 * concurrent clients, and the bad requests (400 naming the field, 401, 404, 413).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LocalBackend } from '../../src/eval/inference/local-backend.ts';
import { OpenAiBackend } from '../../src/eval/inference/openai-backend.ts';
import { type ChatRequest, GREEDY, type InferenceMessage } from '../../src/eval/inference/types.ts';
import { type ServerHandle, startServer } from '../../src/eval/serve/server.ts';
import { TlabError } from '../../src/util/errors.ts';
import { type ChatModelFolder, chatTokenizer, questions, saveChatModel } from './inference-fixture.ts';

const user = (text: string): InferenceMessage[] => [{ role: 'user', content: [{ type: 'text', text }] }];

let folder: ChatModelFolder;
let local: LocalBackend;
let server: ServerHandle;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, text, json };
}

function errorOf(json: Record<string, unknown> | null): {
  message: string;
  param: string | null;
  type: string;
} {
  return (json as { error: { message: string; param: string | null; type: string } }).error;
}

before(async () => {
  folder = saveChatModel();
  local = LocalBackend.open(folder.dir, { batchSize: 16 });
  server = await startServer({
    models: [{ dir: folder.dir, name: 'tiny' }],
    port: 0,
    maxBatch: 16,
    batchWindowMs: 10,
    maxBodyBytes: 64 * 1024,
  });
});
after(async () => {
  await server.close();
  await local.close();
  folder.remove();
});

describe('endpoints', () => {
  test('health and the model list (with context length and image limit)', async () => {
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
      data: Record<string, unknown>[];
    };
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0].id, 'tiny');
    assert.equal(models.data[0].max_model_len, 128);
    assert.equal(models.data[0].max_images, 0);
    assert.ok(server.url.startsWith('http://127.0.0.1:'));
  });

  test('chat completion layout, usage and n choices', async () => {
    const r = await post('/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'what is the answer' }],
      max_tokens: 6,
      temperature: 0,
      n: 2,
    });
    assert.equal(r.status, 200, r.text);
    const body = r.json as {
      object: string;
      choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    assert.equal(body.object, 'chat.completion');
    assert.deepEqual(
      body.choices.map((c) => c.index),
      [0, 1],
    );
    assert.equal(body.choices[0].message.role, 'assistant');
    assert.equal(body.choices[0].message.content, body.choices[1].message.content); // greedy: the same answer
    const [want] = await local.chat([
      { messages: user('what is the answer'), params: { ...GREEDY, maxTokens: 6 } },
    ]);
    assert.equal(body.choices[0].message.content, want.text);
    assert.equal(body.usage.prompt_tokens, want.promptTokens);
    assert.equal(body.usage.completion_tokens, 2 * want.completionTokens);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
  });
});

describe('the OpenAI backend through tlab serve equals the in-process backend', () => {
  test('greedy chat answers (stop strings, token budgets) are the same', async () => {
    const remote = await OpenAiBackend.connect({
      baseUrl: `${server.url}/v1`,
      model: 'tiny',
      concurrency: 16,
    });
    const requests: ChatRequest[] = questions(24).map((q, i) => ({
      messages: user(q),
      params: { ...GREEDY, maxTokens: 4 + (i % 13), stop: i % 5 === 0 ? ['4'] : [] },
    }));
    const want = await local.chat(requests);
    const got = await remote.chat(requests);
    got.forEach((g, i) => {
      assert.equal(g.text, want[i].text, `request ${i}`);
      assert.equal(g.finishReason, want[i].finishReason, `request ${i}`);
      assert.equal(g.promptTokens, want[i].promptTokens);
      assert.equal(g.completionTokens, want[i].completionTokens);
    });
    assert.ok(want.some((w) => w.finishReason === 'stop') && want.some((w) => w.finishReason === 'length'));
    await remote.close();
  });

  test('seeded sampling gives the same answers (each prompt has its own stream)', async () => {
    const remote = new OpenAiBackend({ baseUrl: server.url, model: 'tiny', concurrency: 8 });
    const requests: ChatRequest[] = questions(8).map((q, i) => ({
      messages: user(q),
      params: { ...GREEDY, maxTokens: 10, temperature: 0.9, topK: 10, topP: 0.95, seed: 100 + i },
    }));
    const want = await local.chat(requests);
    const got = await remote.chat(requests);
    assert.deepEqual(
      got.map((g) => g.text),
      want.map((w) => w.text),
    );
    await remote.close();
  });

  test('log-likelihoods (text and token prompts) are the same', async () => {
    const requests = [
      { context: 'what is the', continuation: ' answer' },
      { context: 'tell me ', continuation: 'now please' },
      { messages: user('what is it'), continuation: 'a question' },
      { messages: user('hi'), continuation: 'x' },
    ];
    const want = await local.loglik(requests);
    for (const mode of ['text', 'tokens'] as const) {
      const remote = new OpenAiBackend({
        baseUrl: server.url,
        model: 'tiny',
        tokenizer: folder.dir,
        loglikPrompts: mode,
      });
      const got = await remote.loglik(requests);
      got.forEach((g, i) => {
        assert.equal(g.tokens, want[i].tokens, `${mode} ${i}`);
        assert.ok(
          Math.abs(g.logprob - want[i].logprob) < 1e-5,
          `${mode} ${i}: ${g.logprob} vs ${want[i].logprob}`,
        );
        assert.equal(g.greedy, want[i].greedy, `${mode} ${i}`);
      });
      await remote.close();
    }
  });
});

describe('/v1/completions', () => {
  test('echo + logprobs: every prompt token with its log-probability, top alternatives and text_offset', async () => {
    const prompt = 'tell me the answer';
    const r = await post('/v1/completions', {
      model: 'tiny',
      prompt,
      max_tokens: 1,
      temperature: 0,
      logprobs: 2,
      echo: true,
      add_special_tokens: false,
    });
    assert.equal(r.status, 200, r.text);
    const choice = (r.json as { choices: { text: string; logprobs: Record<string, unknown[]> }[] })
      .choices[0];
    const lp = choice.logprobs as {
      tokens: string[];
      token_logprobs: (number | null)[];
      top_logprobs: (Record<string, number> | null)[];
      text_offset: number[];
    };
    const ids = chatTokenizer.encode(prompt, { addSpecialTokens: false });
    assert.ok(choice.text.startsWith(prompt));
    assert.equal(lp.tokens.length, ids.length + 1);
    assert.deepEqual(lp.tokens.slice(0, ids.length), [...prompt]);
    assert.deepEqual(lp.text_offset, [...Array(ids.length + 1).keys()]);
    assert.equal(lp.token_logprobs[0], null);
    // Reference: a host float64 log-softmax over the full logits of the same ids.
    const runner = local.local.generator.runner;
    const out = await runner.run({ ids: [ids] }, { logits: true });
    const v = local.local.model.vocabSize;
    const logits = out.logits!.data as Float32Array;
    for (let t = 1; t < ids.length; t++) {
      const row = logits.subarray((t - 1) * v, t * v);
      const max = Math.max(...row);
      const z = Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      assert.ok(Math.abs(lp.token_logprobs[t]! - (row[ids[t]] - max - z)) < 1e-4, `token ${t}`);
      const top = lp.top_logprobs[t]!;
      const best = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, 2);
      for (const id of best) assert.ok(chatTokenizer.decode([id]) in top, `top token ${id} at ${t}`);
      assert.ok(Object.keys(top).length <= 3); // top-2 plus the token itself
    }
  });

  test('text prompts generate; max_tokens 0 needs echo; prompt lists answer in order', async () => {
    const r = await post('/v1/completions', {
      model: 'tiny',
      prompt: ['what is', 'tell'],
      max_tokens: 5,
      temperature: 0,
    });
    assert.equal(r.status, 200, r.text);
    const choices = (r.json as { choices: { index: number; text: string }[] }).choices;
    assert.deepEqual(
      choices.map((c) => c.index),
      [0, 1],
    );
    const direct = await local.local.generator.generate(['what is', 'tell'], {
      maxNewTokens: 5,
      stopTokenIds: local.local.stopIds,
    });
    assert.deepEqual(
      choices.map((c) => c.text),
      direct.map((d) => d.text),
    );
    const zero = await post('/v1/completions', { model: 'tiny', prompt: 'abc', max_tokens: 0 });
    assert.equal(zero.status, 400);
    assert.equal(errorOf(zero.json).param, 'max_tokens');
    const tokens = await post('/v1/completions', { model: 'tiny', prompt: [5, 6, 999], max_tokens: 2 });
    assert.equal(tokens.status, 400);
    assert.match(errorOf(tokens.json).message, /token id 999 is outside the vocabulary/);
  });
});

describe('streaming', () => {
  /** The JSON chunks of an SSE body, checking the `data: ...\n\n` framing and the final [DONE]. */
  function chunks(text: string): Record<string, unknown>[] {
    const events = text.split('\n\n').filter((e) => e.length > 0);
    assert.equal(events.at(-1), 'data: [DONE]');
    return events.slice(0, -1).map((e) => {
      assert.ok(e.startsWith('data: '), e);
      return JSON.parse(e.slice(6));
    });
  }

  test('chat: role chunk, content deltas that add up to the answer, finish, then the usage chunk', async () => {
    const body = {
      model: 'tiny',
      messages: [{ role: 'user', content: 'please tell me' }],
      max_tokens: 12,
      temperature: 0,
    };
    const plain = await post('/v1/chat/completions', body);
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const list = chunks(await res.text()) as {
      object: string;
      choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
      usage: unknown;
    }[];
    assert.ok(list.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(list[0].choices[0].delta.role, 'assistant');
    const text = list.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    const answer = plain.json as {
      choices: { message: { content: string }; finish_reason: string }[];
      usage: unknown;
    };
    assert.equal(text, answer.choices[0].message.content);
    assert.ok(list.length > 3, 'one chunk per token');
    assert.equal(list.at(-2)!.choices[0].finish_reason, answer.choices[0].finish_reason);
    assert.deepEqual(list.at(-1)!.choices, []);
    assert.deepEqual(list.at(-1)!.usage, answer.usage);
    assert.ok(list.slice(0, -1).every((c) => c.usage === null));
  });

  test('completions stream text chunks (no usage chunk unless asked)', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'what is', max_tokens: 6, temperature: 0, stream: true }),
    });
    const list = chunks(await res.text()) as { choices: { text: string; finish_reason: string | null }[] }[];
    const plain = await post('/v1/completions', {
      model: 'tiny',
      prompt: 'what is',
      max_tokens: 6,
      temperature: 0,
    });
    assert.equal(
      list.map((c) => c.choices[0].text).join(''),
      (plain.json as { choices: { text: string }[] }).choices[0].text,
    );
    assert.ok(list.every((c) => !('usage' in c)));
  });
});

describe('micro-batching', () => {
  test('concurrent clients are answered in shared batches, each with its own answer', async () => {
    const before = { ...server.models[0].batcher.stats };
    const texts = questions(16);
    const answers = await Promise.all(
      texts.map((q) =>
        post('/v1/chat/completions', {
          model: 'tiny',
          messages: [{ role: 'user', content: q }],
          max_tokens: 5,
          temperature: 0,
        }),
      ),
    );
    const stats = server.models[0].batcher.stats;
    assert.equal(stats.items - before.items, 16);
    assert.ok(
      stats.batches - before.batches < 16,
      `${stats.batches - before.batches} batches for 16 requests`,
    );
    const want = await local.chat(
      texts.map((q) => ({ messages: user(q), params: { ...GREEDY, maxTokens: 5 } })),
    );
    answers.forEach((a, i) => {
      assert.equal(
        (a.json as { choices: { message: { content: string } }[] }).choices[0].message.content,
        want[i].text,
      );
    });
  });
});

describe('bad requests', () => {
  const chat = (extra: Record<string, unknown>) => ({
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    ...extra,
  });

  test('malformed JSON, empty and non-JSON bodies are 400s with a message', async () => {
    const bad = await post('/v1/chat/completions', '{"model": "tiny", ');
    assert.equal(bad.status, 400);
    assert.match(errorOf(bad.json).message, /not valid JSON/);
    const notObject = await post('/v1/chat/completions', '[1, 2]');
    assert.equal(notObject.status, 400);
    assert.match(errorOf(notObject.json).message, /must be a JSON object/);
    const text = await post('/v1/chat/completions', 'hi', { 'content-type': 'text/plain' });
    assert.equal(text.status, 400);
    assert.match(errorOf(text.json).message, /must be a JSON object/);
    const empty = await post('/v1/chat/completions', '');
    assert.equal(empty.status, 400);
    assert.match(errorOf(empty.json).message, /body is empty/);
  });

  test('an oversize body is a 413', async () => {
    const r = await post(
      '/v1/chat/completions',
      chat({ messages: [{ role: 'user', content: 'a'.repeat(100 * 1024) }] }),
    );
    assert.equal(r.status, 413);
    assert.equal(errorOf(r.json).type, 'request_too_large');
  });

  test('an unknown model is a 404 naming the served ones', async () => {
    const r = await post('/v1/chat/completions', chat({ model: 'gpt-4' }));
    assert.equal(r.status, 404);
    assert.match(errorOf(r.json).message, /The model 'gpt-4' does not exist; served: tiny/);
    const route = await post('/v1/embeddings', { model: 'tiny', input: 'x' });
    assert.equal(route.status, 404);
  });

  test('bad parameters are 400s naming the field and the value', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [chat({ temperature: -1 }), 'temperature', /temperature: expected a number >= 0.*got -1/],
      [chat({ top_p: 0 }), 'top_p', /top_p: expected a number in \(0, 1\].*got 0/],
      [chat({ top_k: 2.5 }), 'top_k', /top_k: expected an integer/],
      [chat({ max_tokens: 0 }), 'max_tokens', /max_tokens: expected an integer >= 1/],
      [chat({ seed: 'x' }), 'seed', /seed: expected an integer/],
      [chat({ n: 100 }), 'n', /n: expected at most 16/],
      [chat({ stop: [1] }), 'stop', /stop/],
      [chat({ messages: [] }), 'messages', /messages: expected at least one message/],
      [
        chat({ messages: [{ role: 'robot', content: 'x' }] }),
        'messages.0.role',
        /expected one of system, developer, user, assistant/,
      ],
      [chat({ messages: [{ role: 'user', content: [{ type: 'audio' }] }] }), 'messages.0.content', /content/],
      [{ messages: [{ role: 'user', content: 'x' }] }, 'model', /model: required field is missing/],
      [chat({ frequency_penalty: 0.5 }), 'frequency_penalty', /not supported by this server/],
      [chat({ response_format: { type: 'xml' } }), 'response_format', /response_format/],
      [
        chat({
          response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } },
        }),
        'response_format.json_schema.schema',
        /not a valid JSON schema/,
      ],
      [chat({ top_logprobs: 2 }), 'top_logprobs', /needs logprobs: true/],
      [
        chat({ messages: [{ role: 'user', content: 'a '.repeat(70) }] }),
        'messages',
        /maximum context length is 128 tokens/,
      ],
    ];
    for (const [body, param, message] of cases) {
      const r = await post('/v1/chat/completions', body);
      assert.equal(r.status, 400, `${param}: ${r.text}`);
      const e = errorOf(r.json);
      assert.ok(e.param?.startsWith(param), `${param}: got param ${e.param}`);
      assert.match(e.message, message);
      assert.equal(e.type, 'invalid_request_error');
    }
  });

  test('images: remote URLs are refused, local files are off by default, text-only models say so', async () => {
    const part = (url: string) =>
      chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] });
    const remote = await post('/v1/chat/completions', part('https://example.com/cat.png'));
    assert.equal(remote.status, 400);
    assert.match(errorOf(remote.json).message, /does not fetch remote images/);
    const file = await post('/v1/chat/completions', part('/etc/hostname'));
    assert.match(
      errorOf(file.json).message,
      /local image files are off; start the server with --allowed-local-media-path/,
    );
    const notImage = await post('/v1/chat/completions', part('data:image/png;base64,aGVsbG8='));
    assert.match(errorOf(notImage.json).message, /does not hold an image in a known format/);
    const png =
      'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
    const textOnly = await post('/v1/chat/completions', part(png));
    assert.equal(textOnly.status, 400);
    assert.match(errorOf(textOnly.json).message, /takes no images \(text only\)/);
  });

  test('the server keeps serving after bad requests', async () => {
    const r = await post('/v1/chat/completions', chat({ max_tokens: 3, temperature: 0 }));
    assert.equal(r.status, 200);
  });
});

describe('access', () => {
  test('with --api-key, /v1 needs the key (401 otherwise) and /health stays open', async () => {
    const guarded = await startServer({ models: [local.local], port: 0, apiKey: 'k3y' });
    try {
      const none = await fetch(`${guarded.url}/v1/models`);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as { error: { type: string } }).error.type, 'authentication_error');
      const wrong = await fetch(`${guarded.url}/v1/models`, { headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      const right = await fetch(`${guarded.url}/v1/models`, { headers: { authorization: 'Bearer k3y' } });
      assert.equal(right.status, 200);
      assert.equal((await fetch(`${guarded.url}/health`)).status, 200);
      const remote = new OpenAiBackend({ baseUrl: guarded.url, model: local.model, apiKey: 'k3y' });
      const [answer] = await remote.chat([{ messages: user('hi'), params: { ...GREEDY, maxTokens: 3 } }]);
      assert.equal(typeof answer.text, 'string');
    } finally {
      await guarded.close();
    }
  });

  test('binding beyond loopback needs an API key; duplicate names are refused', async () => {
    await assert.rejects(
      startServer({ models: [local.local], host: '0.0.0.0', port: 0 }),
      (e: Error) =>
        e instanceof TlabError &&
        /--host 0\.0\.0\.0: binding to a non-loopback address needs --api-key/.test(e.message),
    );
    await assert.rejects(
      startServer({ models: [local.local, local.local], port: 0 }),
      /two models are served as/,
    );
  });
});
