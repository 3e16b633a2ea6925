import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chatStopIds, endOfTurnId, renderChatPrompt } from '../../src/eval/inference/chat-render.ts';
import { LocalBackend } from '../../src/eval/inference/local-backend.ts';
import { topTokens } from '../../src/eval/inference/local-model.ts';
import { checkResponseFormat } from '../../src/eval/inference/response-format.ts';
import { type ChatRequest, GREEDY, type InferenceMessage } from '../../src/eval/inference/types.ts';
import { CharTokenizer } from '../../src/tokenize/simple-tokenizer.ts';
import { TlabError } from '../../src/util/errors.ts';
import { type ChatModelFolder, chatTokenizer, questions, saveChatModel } from './inference-fixture.ts';

const user = (text: string): InferenceMessage[] => [{ role: 'user', content: [{ type: 'text', text }] }];
const request = (text: string, maxTokens = 20): ChatRequest => ({
  messages: user(text),
  params: { ...GREEDY, maxTokens },
});

/** log p(ids[t] | ids[..t]) summed over t >= from, from the full logits with a float64 log-softmax on the host. */
async function referenceLoglik(backend: LocalBackend, ids: number[], from: number) {
  const runner = backend.local.generator.runner;
  const out = await runner.run({ ids: [ids.slice(0, -1)] }, { logits: true });
  const v = backend.local.model.vocabSize;
  const logits = out.logits!.data as Float32Array;
  let sum = 0;
  let greedy = true;
  for (let t = from; t < ids.length; t++) {
    const row = logits.subarray((t - 1) * v, t * v);
    let max = Number.NEGATIVE_INFINITY;
    let arg = 0;
    for (let i = 0; i < v; i++)
      if (row[i] > max) {
        max = row[i];
        arg = i;
      }
    let z = 0;
    for (let i = 0; i < v; i++) z += Math.exp(row[i] - max);
    sum += row[ids[t]] - max - Math.log(z);
    greedy &&= arg === ids[t];
  }
  return { sum, greedy };
}

describe('chat rendering', () => {
  test('the end-of-turn token is found from the template (built-in, ChatML) and absent without one', () => {
    assert.equal(endOfTurnId(chatTokenizer), chatTokenizer.tokenToId('<|end|>'));
    assert.deepEqual(
      chatStopIds(chatTokenizer).sort(),
      [chatTokenizer.eosId!, chatTokenizer.tokenToId('<|end|>')!].sort(),
    );
    const chatml = CharTokenizer.build({
      characters: 'abcdefghijklmnopqrstuvwxyz \n',
      extraSpecialTokens: ['<|im_start|>', '<|im_end|>'],
      chatTemplate:
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    });
    assert.equal(endOfTurnId(chatml), chatml.tokenToId('<|im_end|>'));
    // A template that ends turns with plain text has no end-of-turn token; one without template neither.
    const plain = CharTokenizer.build({
      characters: 'abcdefghijklmnopqrstuvwxyz #:\n',
      chatTemplate:
        "{% for m in messages %}{{ '### ' + m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}",
    });
    assert.equal(endOfTurnId(plain), undefined);
    assert.equal(endOfTurnId(CharTokenizer.build({ characters: 'ab' })), undefined);
  });

  test('a conversation renders with the generation prompt; images need a placeholder', () => {
    assert.equal(renderChatPrompt(chatTokenizer, user('hi')), '<|user|>hi<|end|><|assistant|>');
    assert.throws(() => renderChatPrompt(chatTokenizer, []), /messages: empty/);
  });
});

describe('response_format checks', () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' } },
    required: ['name'],
  };
  test('json_object and json_schema outputs are parsed and validated', () => {
    assert.equal(checkResponseFormat('anything', undefined), null);
    assert.equal(checkResponseFormat('anything', { type: 'text' }), null);
    assert.deepEqual(checkResponseFormat(' {"a": 1} ', { type: 'json_object' }), {
      valid: true,
      error: null,
    });
    const list = checkResponseFormat('[1]', { type: 'json_object' })!;
    assert.equal(list.valid, false);
    assert.match(list.error!, /expected a JSON object, got an array/);
    assert.match(checkResponseFormat('{"a": ', { type: 'json_object' })!.error!, /^not JSON/);
    const f = { type: 'json_schema' as const, name: 'person', schema };
    assert.deepEqual(checkResponseFormat('{"name": "x", "age": 3}', f), { valid: true, error: null });
    const wrong = checkResponseFormat('{"name": "x", "age": 3.5}', f)!;
    assert.equal(wrong.valid, false);
    assert.match(wrong.error!, /schema 'person': \/age must be integer/);
    assert.match(checkResponseFormat('{"age": 3}', f)!.error!, /must have required property 'name'/);
  });

  test('an invalid schema is a clear error', () => {
    assert.throws(
      () => checkResponseFormat('{}', { type: 'json_schema', name: 'bad', schema: { type: 'no-such-type' } }),
      (e: Error) =>
        e instanceof TlabError &&
        /response_format\.json_schema \(bad\): not a valid JSON schema/.test(e.message),
    );
  });
});

test('topTokens: the k largest logits, best first, as log-probabilities', () => {
  const logits = Float32Array.of(0.5, 3, -1, 2, 3);
  const z = Math.log([...logits].reduce((s, x) => s + Math.exp(x), 0));
  const top = topTokens(logits, 3);
  assert.deepEqual(
    top.map((t) => t.id),
    [1, 4, 3],
  );
  for (const t of top) assert.ok(Math.abs(t.logprob - (logits[t.id] - z)) < 1e-12);
});

describe('LocalBackend', () => {
  let folder: ChatModelFolder;
  let backend: LocalBackend;
  before(() => {
    folder = saveChatModel();
    backend = LocalBackend.open(folder.dir, { batchSize: 4 });
  });
  after(async () => {
    await backend.close();
    folder.remove();
  });

  test('names the model by its folder and reports text-only capabilities', () => {
    assert.match(backend.model, /^tlab-chat-model-/);
    assert.deepEqual(backend.capabilities, { maxImages: 0, loglik: true, contextLength: 128 });
  });

  test('greedy chat equals the uncached reference generator on the template-rendered prompt, stopping at <|end|>', async () => {
    const texts = questions(12);
    const results = await backend.chat(texts.map((q) => request(q)));
    const end = chatTokenizer.tokenToId('<|end|>')!;
    const prompts = texts.map((q) =>
      chatTokenizer.encode(
        chatTokenizer.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true }),
        {
          addSpecialTokens: false,
        },
      ),
    );
    const reference = await backend.local.generator.generate(prompts, {
      maxNewTokens: 20,
      stopTokenIds: [chatTokenizer.eosId!, end],
      useCache: false,
    });
    results.forEach((r, i) => {
      assert.equal(r.text, reference[i].text, `request ${i}`);
      assert.equal(r.finishReason, reference[i].finishReason === 'length' ? 'length' : 'stop');
      assert.equal(r.promptTokens, prompts[i].length);
      assert.equal(r.completionTokens, reference[i].completionTokens);
      assert.ok(r.latencyMs >= 0);
      assert.equal(r.format, undefined);
    });
    // The fixture's model ends some turns itself and runs out of tokens on others.
    const stopped = results.filter((r) => r.finishReason === 'stop').length;
    assert.ok(stopped > 0 && stopped < results.length, `${stopped} of ${results.length} stopped`);
  });

  test('answers do not depend on batching or on the other requests of a call', async () => {
    const texts = questions(6);
    const together = await backend.chat(texts.map((q, i) => request(q, 8 + i)));
    for (const [i, q] of texts.entries()) {
      const [alone] = await backend.chat([request(q, 8 + i)]);
      assert.equal(alone.text, together[i].text);
      assert.equal(alone.completionTokens, together[i].completionTokens);
    }
  });

  test('stop strings cut the text; responseFormat is checked and reported', async () => {
    const [free] = await backend.chat([request('what is the answer', 20)]);
    const cut = free.text.slice(2, 3);
    const [stopped] = await backend.chat([
      { messages: user('what is the answer'), params: { ...GREEDY, maxTokens: 20, stop: [cut] } },
    ]);
    assert.equal(stopped.text, free.text.slice(0, free.text.indexOf(cut)));
    assert.equal(stopped.finishReason, 'stop');
    const [json] = await backend.chat([
      {
        messages: user('give json'),
        params: { ...GREEDY, maxTokens: 6, responseFormat: { type: 'json_object' } },
      },
    ]);
    assert.equal(json.format?.valid, false);
    assert.match(json.format!.error!, /^not JSON/);
  });

  test('loglik of text and conversation contexts equals a host log-softmax over the full logits', async () => {
    const requests = [
      { context: 'what is the', continuation: ' answer' },
      { context: 'tell me ', continuation: 'now' }, // the trailing space moves to the continuation
      { messages: user('what is it'), continuation: 'a question' },
    ];
    const results = await backend.loglik(requests);
    const enc = (s: string) => chatTokenizer.encode(s, { addSpecialTokens: false });
    const cases = [
      { ctx: enc('what is the'), cont: enc(' answer') },
      { ctx: enc('tell me'), cont: enc(' now') },
      { ctx: enc('<|user|>what is it<|end|><|assistant|>'), cont: enc('a question') },
    ];
    for (const [i, c] of cases.entries()) {
      const ref = await referenceLoglik(backend, [...c.ctx, ...c.cont], c.ctx.length);
      assert.equal(results[i].tokens, c.cont.length);
      assert.ok(Math.abs(results[i].logprob - ref.sum) < 1e-4, `${results[i].logprob} vs ${ref.sum}`);
      assert.equal(results[i].greedy, ref.greedy);
    }
    // A continuation the model would produce itself is greedy.
    const [free] = await backend.chat([request('what is it', 5)]);
    const [own] = await backend.loglik([
      { messages: user('what is it'), continuation: free.text.slice(0, 3) },
    ]);
    assert.equal(own.greedy, true);
  });

  test('inputs the model cannot take are TlabErrors that say why', async () => {
    const png = { bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47]), mediaType: 'image/png' };
    const withImage: InferenceMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image', image: png },
          { type: 'text', text: 'what is this' },
        ],
      },
    ];
    await assert.rejects(
      backend.chat([{ messages: withImage, params: GREEDY }]),
      (e: Error) =>
        e instanceof TlabError &&
        /1 image\(s\), but the gpt2 model .* takes no images \(text only\)/.test(e.message),
    );
    await assert.rejects(
      backend.loglik([{ messages: withImage, continuation: 'x' }]),
      /takes no images \(text only\)/,
    );
    await assert.rejects(backend.chat([request('a '.repeat(80))]), /maximum context length is 128 tokens/);
    await assert.rejects(
      backend.loglik([{ context: 'abc', continuation: '' }]),
      /continuation "" has no tokens/,
    );
  });
});
