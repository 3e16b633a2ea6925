/**
 * Request bodies of /v1/chat/completions and /v1/completions (OpenAI's fields, vLLM's extras such as top_k and
 * add_special_tokens), validated with zod. The first problem becomes a 400 naming the field and the value sent.
 * Fields of features the server does not have (tools, penalties, logit_bias) are refused unless they are at
 * their neutral value, so a client never silently gets something other than it asked for; other unknown
 * fields are ignored, as vLLM does.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import type { DecodingParams, ResponseFormat } from '../inference/types.ts';
import { ApiError, badField } from './api-error.ts';

const nonNegative = z.number().min(0, 'expected a number >= 0 (0 = greedy)');

const stop = z
  .union([z.string(), z.array(z.string()).max(16, 'expected at most 16 stop strings')])
  .nullable()
  .optional();

const sampling = {
  model: z.string({ error: 'expected the served model name (a string)' }),
  temperature: nonNegative.nullable().optional(),
  top_p: z
    .number()
    .gt(0, 'expected a number in (0, 1] (1 = off)')
    .max(1, 'expected a number in (0, 1] (1 = off)')
    .nullable()
    .optional(),
  top_k: z
    .int('expected an integer (-1 or 0 = off)')
    .min(-1, 'expected an integer >= 1, or -1 / 0 = off')
    .nullable()
    .optional(),
  seed: z.int('expected an integer').nullable().optional(),
  stop,
  n: z
    .int('expected an integer')
    .min(1, 'expected an integer >= 1')
    .max(16, 'expected at most 16')
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().nullable().optional() }).nullable().optional(),
};

/** Fields accepted only at their neutral value. */
const NEUTRAL: Record<string, (v: unknown) => boolean> = {
  frequency_penalty: (v) => v === 0 || v === null,
  presence_penalty: (v) => v === 0 || v === null,
  repetition_penalty: (v) => v === 1 || v === null,
  min_p: (v) => v === 0 || v === null,
  logit_bias: (v) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0),
  tools: (v) => v === null || (Array.isArray(v) && v.length === 0),
  tool_choice: (v) => v === null || v === 'none',
  suffix: (v) => v === null || v === '',
  best_of: (v) => v === null || v === 1,
};

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.union([z.string(), z.object({ url: z.string(), detail: z.string().optional() })]),
});
const part = z.discriminatedUnion('type', [textPart, imagePart], {
  error: 'expected a content part {"type": "text", "text"} or {"type": "image_url", "image_url": {"url"}}',
});

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], {
    error: 'expected one of system, developer, user, assistant',
  }),
  content: z.union([z.string(), z.array(part)]).nullable(),
  name: z.string().optional(),
});

const responseFormat = z
  .discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('text') }),
      z.object({ type: z.literal('json_object') }),
      z.object({
        type: z.literal('json_schema'),
        json_schema: z.object({
          name: z.string().default('response'),
          schema: z.record(z.string(), z.unknown()),
          strict: z.boolean().nullable().optional(),
          description: z.string().optional(),
        }),
      }),
    ],
    { error: 'expected {"type": "text" | "json_object" | "json_schema", ...}' },
  )
  .nullable()
  .optional();

export const ChatBody = z.object({
  ...sampling,
  messages: z.array(message).min(1, 'expected at least one message'),
  max_tokens: z.int('expected an integer').min(1, 'expected an integer >= 1').nullable().optional(),
  max_completion_tokens: z
    .int('expected an integer')
    .min(1, 'expected an integer >= 1')
    .nullable()
    .optional(),
  response_format: responseFormat,
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z
    .int('expected an integer')
    .min(0, 'expected an integer in 0..20')
    .max(20, 'expected an integer in 0..20')
    .nullable()
    .optional(),
});
export type ChatBody = z.infer<typeof ChatBody>;

const tokenIds = z
  .array(z.int('expected token ids (integers)').min(0, 'expected token ids >= 0'))
  .min(1, 'expected at least one token');

export const CompletionBody = z.object({
  ...sampling,
  prompt: z.union(
    [
      z.string(),
      z.array(z.string()).min(1, 'expected at least one prompt'),
      tokenIds,
      z.array(tokenIds).min(1, 'expected at least one prompt'),
    ],
    { error: 'expected a string, a list of strings, a list of token ids, or a list of such lists' },
  ),
  max_tokens: z.int('expected an integer').min(0, 'expected an integer >= 0').nullable().optional(),
  echo: z.boolean().nullable().optional(),
  logprobs: z
    .int('expected an integer')
    .min(0, 'expected an integer in 0..20')
    .max(20, 'expected an integer in 0..20')
    .nullable()
    .optional(),
  add_special_tokens: z.boolean().nullable().optional(),
});
export type CompletionBody = z.infer<typeof CompletionBody>;

/** Parses a body with `schema`; a 400 naming the first field at fault and the value sent. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new ApiError(400, 'the request body must be a JSON object');
  for (const [field, neutral] of Object.entries(NEUTRAL)) {
    const value = (body as Record<string, unknown>)[field];
    if (value !== undefined && !neutral(value))
      throw badField(field, `not supported by this server (got ${JSON.stringify(value)})`);
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue.path.map(String);
  const param = path.join('.') || '(body)';
  if (issue.code === 'invalid_type' && valueAt(body, path) === undefined)
    throw badField(param, `required field is missing (${issue.message})`);
  return fail(param, issue.message, valueAt(body, path));
}

function fail(param: string, message: string, value: unknown): never {
  const shown = JSON.stringify(value);
  throw badField(param, `${message}, got ${shown === undefined ? 'nothing' : shown.slice(0, 80)}`);
}

function valueAt(body: unknown, path: readonly string[]): unknown {
  let v: unknown = body;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Decoding parameters of a request, with OpenAI's defaults (temperature 1, a random seed when none is given). */
export function decodingParams(
  body: ChatBody | CompletionBody,
  maxTokens: number,
  responseFormat?: ResponseFormat,
): DecodingParams {
  const topK = body.top_k ?? 0;
  return {
    maxTokens,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    topK: Math.max(topK, 0),
    seed: body.seed ?? randomInt(2 ** 31),
    stop: body.stop === undefined || body.stop === null ? [] : [body.stop].flat().filter((s) => s.length > 0),
    ...(responseFormat ? { responseFormat } : {}),
  };
}

/** The request's response_format in the inference interface's terms. */
export function responseFormatOf(body: ChatBody): ResponseFormat | undefined {
  const f = body.response_format;
  if (!f || f.type === 'text') return undefined;
  if (f.type === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', name: f.json_schema.name, schema: f.json_schema.schema };
}
