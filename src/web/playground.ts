/**
 * The playground's server side. Chat requests go to `tlab serve` (or any OpenAI-compatible server given with
 * --serve-url) through this server, which streams the server-sent events back as they arrive and appends every
 * exchange — prompt, decoding settings, answer, finish reason, usage, timing, or the error — to a JSONL log
 * (default <experiment>/playground/exchanges.jsonl). Exchanges the browser runs itself on an exported ONNX model
 * (onnxruntime-web) are posted back and logged the same way. Images are logged by SHA-256 and size, not inline.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { FastifyInstance } from 'fastify';

export interface PlaygroundOptions {
  dir: string;
  /** Base URL of an OpenAI-compatible server (tlab serve), with or without /v1. */
  serveUrl?: string;
  serveApiKey?: string;
  logFile: string;
}

const ROLES = new Set(['system', 'user', 'assistant']);
const MAX_TEXT = 100_000;

type Part = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };
interface Message {
  role: string;
  content: string | Part[];
}

/** Checks a conversation as the playground sends it; returns why not, or null. */
export function messagesProblem(value: unknown): string | null {
  if (!Array.isArray(value) || value.length === 0) return 'messages: expected a non-empty list';
  for (const [i, m] of value.entries()) {
    if (!m || typeof m !== 'object') return `messages.${i}: expected {role, content}`;
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.has(role))
      return `messages.${i}.role: expected system, user or assistant`;
    if (typeof content === 'string') {
      if (content.length > MAX_TEXT) return `messages.${i}.content: longer than ${MAX_TEXT} characters`;
      continue;
    }
    if (!Array.isArray(content)) return `messages.${i}.content: expected a string or a list of parts`;
    for (const [j, p] of content.entries()) {
      const part = p as Record<string, unknown>;
      if (part?.type === 'text' && typeof part.text === 'string' && part.text.length <= MAX_TEXT) continue;
      const url = (part?.image_url as Record<string, unknown> | undefined)?.url;
      if (
        part?.type === 'image_url' &&
        typeof url === 'string' &&
        /^data:image\/(png|jpeg|webp|gif);base64,/.test(url)
      )
        continue;
      return `messages.${i}.content.${j}: expected {type: 'text', text} or {type: 'image_url', image_url: {url: 'data:image/…;base64,…'}}`;
    }
  }
  return null;
}

const NUMBER_FIELDS: Record<string, [number, number]> = {
  temperature: [0, 10],
  top_p: [0, 1],
  top_k: [-1, 100000],
  max_tokens: [1, 100000],
  seed: [0, 2 ** 31 - 1],
};

/** Decoding settings: only known fields, each in range. */
export function decodingSettings(
  body: Record<string, unknown>,
): { settings: Record<string, unknown> } | { error: string } {
  const settings: Record<string, unknown> = {};
  for (const [k, [lo, hi]] of Object.entries(NUMBER_FIELDS)) {
    const v = body[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi)
      return { error: `${k}: expected a number in [${lo}, ${hi}], got ${JSON.stringify(v)}` };
    if ((k === 'top_k' || k === 'max_tokens' || k === 'seed') && !Number.isInteger(v))
      return { error: `${k}: expected an integer, got ${v}` };
    settings[k] = v;
  }
  if (body.stop !== undefined && body.stop !== null) {
    const stop = body.stop;
    if (
      !Array.isArray(stop) ||
      stop.length > 4 ||
      !stop.every((s) => typeof s === 'string' && s.length > 0 && s.length < 200)
    )
      return { error: 'stop: expected up to 4 non-empty strings' };
    if (stop.length) settings.stop = stop;
  }
  return { settings };
}

/** The conversation as logged: image data URLs replaced by their type, size and SHA-256. */
function loggedMessages(messages: Message[]): unknown[] {
  return messages.map((m) => ({
    role: m.role,
    content:
      typeof m.content === 'string'
        ? m.content
        : m.content.map((p) => {
            if (p.type === 'text') return p;
            const [head, data] = p.image_url.url.split(',', 2);
            const bytes = Buffer.from(data ?? '', 'base64');
            return {
              type: 'image',
              media_type: head.slice(5, head.indexOf(';')),
              bytes: bytes.length,
              sha256: createHash('sha256').update(bytes).digest('hex'),
            };
          }),
  }));
}

function appendLine(file: string, entry: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  // One write per line in append mode: concurrent exchanges never interleave within a line.
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

const SKIP_DIRS = new Set([
  'runs',
  'cells',
  'grader_logs',
  'failures',
  'features',
  'metrics',
  'geometry',
  'checkpoints',
  'formatted_datasets',
  'report',
  'playground',
]);

/** Folders inside the experiment holding a browser-runnable export: onnx/model.onnx with config and tokenizer. */
export function findOnnxExports(dir: string): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = [];
  const visit = (folder: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(folder).sort();
    } catch {
      return;
    }
    if (
      ['config.json', 'tokenizer.json', 'onnx'].every((f) => names.includes(f)) &&
      existsSync(join(folder, 'onnx', 'model.onnx'))
    ) {
      const rel = relative(dir, folder);
      out.push({ name: rel, path: rel });
      return;
    }
    if (depth >= 3) return;
    for (const n of names) {
      if (n.startsWith('.') || (depth === 0 && SKIP_DIRS.has(n))) continue;
      const p = join(folder, n);
      try {
        if (statSync(p).isDirectory()) visit(p, depth + 1);
      } catch {}
    }
  };
  visit(dir, 0);
  return out;
}

function v1(url: string): string {
  const base = url.replace(/\/+$/, '');
  return base.endsWith('/v1') ? base : `${base}/v1`;
}

export function registerPlaygroundRoutes(app: FastifyInstance, o: PlaygroundOptions): void {
  const headers = (): Record<string, string> => ({
    'Content-Type': 'application/json',
    ...(o.serveApiKey ? { Authorization: `Bearer ${o.serveApiKey}` } : {}),
  });

  app.get('/api/playground', async () => {
    let serve: { url: string; models: unknown[]; error?: string } | null = null;
    if (o.serveUrl) {
      try {
        const r = await fetch(`${v1(o.serveUrl)}/models`, {
          headers: headers(),
          signal: AbortSignal.timeout(5000),
        });
        const body = (await r.json()) as { data?: unknown[]; error?: { message?: string } };
        serve = r.ok
          ? { url: o.serveUrl, models: body.data ?? [] }
          : { url: o.serveUrl, models: [], error: body.error?.message ?? `HTTP ${r.status}` };
      } catch (error) {
        serve = {
          url: o.serveUrl,
          models: [],
          error: `cannot reach ${o.serveUrl}: ${(error as Error).message}`,
        };
      }
    }
    return { serve, onnx: findOnnxExports(o.dir), log: relative(o.dir, o.logFile) };
  });

  app.post('/api/playground/chat', { bodyLimit: 16 * 1024 * 1024 }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!o.serveUrl)
      return reply
        .code(400)
        .send({ error: 'no model server: start the dashboard with --serve-url <tlab serve URL>' });
    if (typeof body.model !== 'string' || body.model === '')
      return reply.code(400).send({ error: 'model: expected the id of a served model' });
    const problem = messagesProblem(body.messages);
    if (problem) return reply.code(400).send({ error: problem });
    const decoded = decodingSettings(body);
    if ('error' in decoded) return reply.code(400).send({ error: decoded.error });
    const messages = body.messages as Message[];
    const started = Date.now();
    const entry: Record<string, unknown> = {
      time: new Date(started).toISOString(),
      mode: 'serve',
      server: o.serveUrl,
      model: body.model,
      settings: decoded.settings,
      messages: loggedMessages(messages),
    };
    let upstream: Response;
    try {
      upstream = await fetch(`${v1(o.serveUrl)}/chat/completions`, {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({
          model: body.model,
          messages,
          ...decoded.settings,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
    } catch (error) {
      const message = `cannot reach ${o.serveUrl}: ${(error as Error).message}`;
      appendLine(o.logFile, { ...entry, error: message, seconds: (Date.now() - started) / 1000 });
      return reply.code(502).send({ error: message });
    }
    if (!upstream.ok || !upstream.body) {
      const text = await upstream.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
      } catch {}
      appendLine(o.logFile, {
        ...entry,
        error: message,
        status: upstream.status,
        seconds: (Date.now() - started) / 1000,
      });
      return reply.code(upstream.status >= 400 ? upstream.status : 502).send({ error: message });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    let answer = '';
    let finish: string | null = null;
    let usage: unknown = null;
    let pending = '';
    const decoder = new TextDecoder();
    const parse = (block: string) => {
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        try {
          const chunk = JSON.parse(line.slice(6)) as {
            choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
            usage?: unknown;
          };
          for (const c of chunk.choices ?? []) {
            if (c.delta?.content) answer += c.delta.content;
            if (c.finish_reason) finish = c.finish_reason;
          }
          if (chunk.usage) usage = chunk.usage;
        } catch {}
      }
    };
    let error: string | undefined;
    try {
      for await (const bytes of upstream.body as unknown as AsyncIterable<Uint8Array>) {
        res.write(bytes);
        pending += decoder.decode(bytes, { stream: true });
        const blocks = pending.split('\n\n');
        pending = blocks.pop() ?? '';
        for (const b of blocks) parse(b);
      }
      parse(pending);
    } catch (e) {
      error = `stream from ${o.serveUrl} broke: ${(e as Error).message}`;
      res.write(`data: ${JSON.stringify({ error: { message: error } })}\n\n`);
    }
    res.end();
    appendLine(o.logFile, {
      ...entry,
      answer,
      finish_reason: finish,
      usage,
      seconds: (Date.now() - started) / 1000,
      ...(error ? { error } : {}),
    });
  });

  app.post('/api/playground/log', { bodyLimit: 1024 * 1024 }, async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    if (typeof b.model !== 'string' || !findOnnxExports(o.dir).some((x) => x.path === b.model))
      return reply.code(400).send({ error: 'model: expected an ONNX export folder of this experiment' });
    const problem = messagesProblem(b.messages);
    if (problem) return reply.code(400).send({ error: problem });
    const decoded = decodingSettings((b.settings ?? {}) as Record<string, unknown>);
    if ('error' in decoded) return reply.code(400).send({ error: `settings.${decoded.error}` });
    if (typeof b.answer !== 'string' || b.answer.length > MAX_TEXT)
      return reply.code(400).send({ error: 'answer: expected a string' });
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    appendLine(o.logFile, {
      time: new Date().toISOString(),
      mode: 'onnx-browser',
      model: b.model,
      settings: decoded.settings,
      messages: loggedMessages(b.messages as Message[]),
      answer: b.answer,
      finish_reason: typeof b.finish_reason === 'string' ? b.finish_reason : null,
      tokens: num(b.tokens),
      seconds: num(b.seconds),
      backend: typeof b.backend === 'string' ? b.backend.slice(0, 100) : null,
    });
    return { logged: true };
  });
}
