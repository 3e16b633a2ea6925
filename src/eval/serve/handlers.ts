/**
 * The two generation endpoints: request body → prompt ids and decoding parameters → the model's micro-batcher →
 * OpenAI answer (JSON, or server-sent events when `stream` is set). Problems with the request are 400s naming
 * the field; the model's own failures are 500s.
 */
import type { FastifyReply } from 'fastify';
import { expandImagePlaceholders, isVlm } from '../../models/vlm.ts';
import { TlabError } from '../../util/errors.ts';
import type { EncodedPrompt, GenerationOutput, LocalModel, TokenLogprob } from '../inference/local-model.ts';
import { schemaValidator } from '../inference/response-format.ts';
import type { InferenceMessage, InferencePart } from '../inference/types.ts';
import { ApiError, badField } from './api-error.ts';
import { imageSourceOf } from './media.ts';
import type { MicroBatcher } from './micro-batcher.ts';
import { ChatBody, CompletionBody, decodingParams, parseBody, responseFormatOf } from './requests.ts';
import {
  chatLogprobs,
  completionId,
  completionLogprobs,
  textDeltas,
  type Usage,
  usageOf,
} from './responses.ts';

export interface ServedModel {
  local: LocalModel;
  batcher: MicroBatcher;
  /** Unix time the server started serving it. */
  created: number;
}

type Lookup = (name: unknown) => ServedModel;

/** Runs `fn`, turning a TlabError (a problem with the request's content) into a 400 naming `param`. */
function asBadRequest<T>(param: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TlabError) throw new ApiError(400, error.message, 'invalid_request_error', param);
    throw error;
  }
}

/** The model call failed: a 500 that says so (the request itself was valid). */
async function modelCall<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(500, `model '${name}' failed: ${(error as Error).message}`, 'server_error');
  }
}

function toInferenceMessages(
  messages: ChatBody['messages'],
  mediaRoots: readonly string[],
): InferenceMessage[] {
  return messages.map((m, i) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    if (m.content === null) return { role, content: [] };
    if (typeof m.content === 'string') return { role, content: [{ type: 'text', text: m.content }] };
    const content = m.content.map((p, j): InferencePart => {
      if (p.type === 'text') return { type: 'text', text: p.text };
      const url = typeof p.image_url === 'string' ? p.image_url : p.image_url.url;
      return {
        type: 'image',
        image: imageSourceOf(url, `messages.${i}.content.${j}.image_url.url`, mediaRoots),
      };
    });
    return { role, content };
  });
}

/** Server-sent events: `data: {json}\n\n` per chunk, then `data: [DONE]`. */
function openStream(reply: FastifyReply): { send: (chunk: unknown) => void; end: () => void } {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  return {
    send: (chunk) => raw.write(`data: ${JSON.stringify(chunk)}\n\n`),
    end: () => {
      raw.write('data: [DONE]\n\n');
      raw.end();
    },
  };
}

/** The context left after the prompt, and the completion budget: what was asked for, cut to fit. */
function budget(
  local: LocalModel,
  prompt: readonly number[],
  asked: number | null | undefined,
  param: string,
) {
  const length = local.expandedLength(prompt);
  const room = local.model.maxPositions - length;
  if (room < 1)
    throw badField(
      param,
      `the prompt has ${length} tokens; this model's maximum context length is ${local.model.maxPositions} tokens`,
    );
  return Math.min(asked ?? room, room);
}

/** Log-probabilities of the generated tokens (teacher-forced over prompt + completion), with alternatives. */
async function generatedLogprobs(
  m: ServedModel,
  prompt: EncodedPrompt,
  out: GenerationOutput,
  topK: number,
): Promise<TokenLogprob[]> {
  if (out.tokenIds.length === 0) return [];
  const { local } = m;
  const pixels = await local.pixels(prompt.images, 'messages');
  const vlm = isVlm(local.model) ? local.model : null;
  const ids = vlm
    ? expandImagePlaceholders(
        prompt.ids,
        vlm.imageTokenId,
        pixels.map((image) => vlm.imageInputs.tokens(image, 'messages')),
      )
    : prompt.ids;
  const scored = await m.batcher.promptLogprobs([...ids, ...out.tokenIds], topK, pixels);
  return scored.slice(ids.length - 1);
}

export async function handleChat(
  body: unknown,
  reply: FastifyReply,
  lookup: Lookup,
  mediaRoots: readonly string[],
): Promise<unknown> {
  const req = parseBody(ChatBody, body);
  const m = lookup(req.model);
  const { local } = m;
  const messages = toInferenceMessages(req.messages, mediaRoots);
  const prompt: EncodedPrompt = asBadRequest('messages', () => local.encodeChat(messages, 'messages'));
  const maxTokens = budget(local, prompt.ids, req.max_completion_tokens ?? req.max_tokens, 'messages');
  const format = responseFormatOf(req);
  if (format?.type === 'json_schema')
    asBadRequest('response_format.json_schema.schema', () =>
      schemaValidator(format.schema, 'response_format.json_schema.schema'),
    );
  const params = decodingParams(req, maxTokens, format);
  const wantLogprobs = req.logprobs === true;
  const topK = req.top_logprobs ?? 0;
  if (req.top_logprobs && !wantLogprobs) throw badField('top_logprobs', 'needs logprobs: true');
  if (req.stream && wantLogprobs) throw badField('logprobs', 'not available with stream; ask without stream');
  const n = req.n ?? 1;

  const outputs = await modelCall(local.name, () =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        m.batcher.generate({ prompt, params: { ...params, seed: params.seed + i } }),
      ),
    ),
  );
  const logprobs = wantLogprobs
    ? await modelCall(local.name, () =>
        Promise.all(outputs.map((o) => generatedLogprobs(m, prompt, o, topK))),
      )
    : null;
  const usage = usageOf(
    prompt.ids.length,
    outputs.reduce((s, o) => s + o.completionTokens, 0),
  );
  const id = completionId('chatcmpl');
  const created = Math.floor(Date.now() / 1000);
  const head = { id, created, model: local.name };

  if (req.stream) {
    const includeUsage = req.stream_options?.include_usage === true;
    const stream = openStream(reply);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      stream.send({
        ...head,
        object: 'chat.completion.chunk',
        choices,
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      });
    outputs.forEach((o, index) => {
      chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      for (const piece of textDeltas(local.tokenizer, o))
        chunk([{ index, delta: { content: piece }, logprobs: null, finish_reason: null }]);
      chunk([{ index, delta: {}, logprobs: null, finish_reason: o.finishReason }]);
    });
    if (includeUsage) stream.send({ ...head, object: 'chat.completion.chunk', choices: [], usage });
    stream.end();
    return reply;
  }
  return {
    ...head,
    object: 'chat.completion',
    choices: outputs.map((o, index) => ({
      index,
      message: { role: 'assistant', content: o.text },
      logprobs: logprobs ? chatLogprobs(local.tokenizer, logprobs[index], topK) : null,
      finish_reason: o.finishReason,
    })),
    usage,
  };
}

export async function handleCompletion(body: unknown, reply: FastifyReply, lookup: Lookup): Promise<unknown> {
  const req = parseBody(CompletionBody, body);
  const m = lookup(req.model);
  const { local } = m;
  const tokenizer = local.tokenizer;
  const echo = req.echo === true;
  const asked = req.max_tokens ?? 16;
  if (asked === 0 && !echo) throw badField('max_tokens', 'expected an integer >= 1 (0 only with echo)');
  const special = req.add_special_tokens ?? true;
  const raw = req.prompt;
  const list: (string | number[])[] =
    typeof raw === 'string'
      ? [raw]
      : raw.length > 0 && typeof raw[0] === 'number'
        ? [raw as number[]]
        : (raw as (string | number[])[]);
  const prompts = list.map((p, i) => {
    const param = list.length > 1 ? `prompt.${i}` : 'prompt';
    const ids = asBadRequest(param, () =>
      typeof p === 'string' ? tokenizer.encode(p, { addSpecialTokens: special }) : p,
    );
    asBadRequest(param, () => local.checkPrompt(ids, param, asked > 0 ? 1 : 0));
    const maxTokens = asked > 0 ? budget(local, ids, asked, param) : 0;
    const text = typeof p === 'string' ? p : tokenizer.decode(ids.filter((id) => id < tokenizer.vocabSize));
    return { ids, text, maxTokens };
  });
  const topK = req.logprobs ?? null;
  if (req.stream && topK !== null)
    throw badField('logprobs', 'not available with stream; ask without stream');
  const n = req.n ?? 1;
  const base = decodingParams(req, 1);

  const empty: GenerationOutput = {
    text: '',
    tokenIds: [],
    finishReason: 'length',
    stopTokenId: null,
    promptTokens: 0,
    completionTokens: 0,
  };
  const jobs = prompts.flatMap((p) =>
    Array.from({ length: n }, (_, j) => ({
      prompt: p,
      output:
        p.maxTokens > 0
          ? m.batcher.generate({
              prompt: { ids: p.ids, images: [] },
              params: { ...base, maxTokens: p.maxTokens, seed: base.seed + j },
            })
          : Promise.resolve({ ...empty, promptTokens: p.ids.length }),
    })),
  );
  const outputs = await modelCall(local.name, () => Promise.all(jobs.map((j) => j.output)));
  const logprobs =
    topK === null
      ? null
      : await modelCall(local.name, () =>
          Promise.all(
            jobs.map(async (job, k) => {
              const all = [...job.prompt.ids, ...outputs[k].tokenIds];
              const scored = await m.batcher.promptLogprobs(all, topK);
              const from = echo ? 0 : job.prompt.ids.length;
              return completionLogprobs(tokenizer, all, scored, from, topK, 0);
            }),
          ),
        );
  const usage: Usage = usageOf(
    prompts.reduce((s, p) => s + p.ids.length, 0),
    outputs.reduce((s, o) => s + o.completionTokens, 0),
  );
  const head = { id: completionId('cmpl'), created: Math.floor(Date.now() / 1000), model: local.name };

  if (req.stream) {
    const includeUsage = req.stream_options?.include_usage === true;
    const stream = openStream(reply);
    const chunk = (choice: Record<string, unknown>) =>
      stream.send({
        ...head,
        object: 'text_completion',
        choices: [{ logprobs: null, finish_reason: null, ...choice }],
        ...(includeUsage ? { usage: null } : {}),
      });
    outputs.forEach((o, index) => {
      if (echo) chunk({ index, text: jobs[index].prompt.text });
      for (const piece of textDeltas(tokenizer, o)) chunk({ index, text: piece });
      chunk({ index, text: '', finish_reason: o.finishReason });
    });
    if (includeUsage) stream.send({ ...head, object: 'text_completion', choices: [], usage });
    stream.end();
    return reply;
  }
  return {
    ...head,
    object: 'text_completion',
    choices: outputs.map((o, index) => ({
      index,
      text: (echo ? jobs[index].prompt.text : '') + o.text,
      logprobs: logprobs ? logprobs[index] : null,
      finish_reason: o.finishReason,
    })),
    usage,
  };
}
