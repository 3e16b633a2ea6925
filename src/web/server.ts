/**
 * `tlab dashboard`: a local web app over an experiment folder (fastify). It serves the page and its libraries
 * (from node_modules, never a CDN), JSON views of the result files, the files themselves under /files/ (only
 * inside the folder; see request-path.ts), live-update events, and the playground's proxy to `tlab serve`.
 * It binds 127.0.0.1 unless told otherwise, and another address only with a token (access.ts).
 */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve } from 'node:path';
import Fastify from 'fastify';
import { checkExperimentDir } from '../report/experiment.ts';
import { TlabError } from '../util/errors.ts';
import { checkAccess, isLoopbackHost } from './access.ts';
import { ExperimentCache, registerApiRoutes } from './api.ts';
import { assetTable } from './assets.ts';
import { FolderWatcher } from './live.ts';
import { registerPlaygroundRoutes } from './playground.ts';
import { CONTENT_TYPES, lookupRequestPath } from './request-path.ts';

export interface DashboardOptions {
  dir: string;
  /** Default 127.0.0.1; anything but loopback needs `token`. */
  host?: string;
  /** Default 6300; 0 picks a free port. */
  port?: number;
  token?: string;
  /** The model server of the playground (tlab serve). */
  serveUrl?: string;
  serveApiKey?: string;
  /** Exchange log of the playground (default <dir>/playground/exchanges.jsonl). */
  playgroundLog?: string;
  /** Polling interval of live updates (default 1000 ms). */
  pollMs?: number;
}

export interface DashboardHandle {
  /** http://host:port/ (with ?token=… when there is a token). */
  url: string;
  dir: string;
  close(): Promise<void>;
}

export const DEFAULT_DASHBOARD_PORT = 6300;

/** No inline or remote scripts; 'wasm-unsafe-eval' lets onnxruntime-web compile WebAssembly. */
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function startDashboard(options: DashboardOptions): Promise<DashboardHandle> {
  const dir = checkExperimentDir(options.dir);
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  if (!loopback && !options.token)
    throw new TlabError(
      `--host ${host}: the dashboard binds an address other than loopback only with --token`,
      'give --token <secret> (people then open the URL it prints), or keep the default 127.0.0.1',
    );
  if (options.token !== undefined && options.token.length < 8)
    throw new TlabError('--token: use at least 8 characters');
  const assets = assetTable();
  const watcher = new FolderWatcher(dir, options.pollMs ?? 1000);
  const cache = new ExperimentCache(dir, watcher);
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  const policy = { loopback, token: options.token };

  app.addHook('onRequest', async (req, reply) => {
    const decision = checkAccess(policy, req.method, req.raw.url ?? '/', req.headers);
    if (decision.ok) return;
    if (decision.status === 303)
      return reply
        .code(303)
        .header('Set-Cookie', decision.cookie)
        .header('Location', decision.location)
        .send();
    return reply.code(decision.status).type('text/plain; charset=utf-8').send(decision.message);
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('Content-Security-Policy', CSP);
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    return payload;
  });

  const page = readFileSync(assets.get('/app/index.html') as string, 'utf8');
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page));

  const sendFile = (path: string, reply: import('fastify').FastifyReply) => {
    const st = statSync(path);
    reply.header('Content-Length', st.size);
    reply.type(CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream');
    return reply.send(createReadStream(path));
  };
  for (const prefix of ['/app/*', '/shared/*', '/vendor/*'])
    app.get(prefix, async (req, reply) => {
      const key = (req.raw.url ?? '').split('?')[0];
      const path = assets.get(key);
      if (!path) return reply.code(404).type('text/plain').send(`not found: ${key}`);
      reply.header('Cache-Control', 'no-cache');
      return sendFile(path, reply);
    });

  // Files of the experiment: the raw URL is parsed here, segment by segment (fastify would decode %2F into /).
  app.get('/files/*', async (req, reply) => {
    const raw = (req.raw.url ?? '').slice('/files/'.length);
    const found = lookupRequestPath(dir, raw);
    if (!found.ok) return reply.code(found.status).type('text/plain; charset=utf-8').send(found.reason);
    return sendFile(found.path, reply);
  });

  const closeStreams = registerApiRoutes(app, cache, watcher);
  registerPlaygroundRoutes(app, {
    dir,
    serveUrl: options.serveUrl,
    serveApiKey: options.serveApiKey,
    logFile: resolve(options.playgroundLog ?? join(dir, 'playground', 'exchanges.jsonl')),
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply
      .code(404)
      .type('text/plain; charset=utf-8')
      .send(`not found: ${req.method} ${(req.raw.url ?? '').split('?')[0]}`),
  );
  app.setErrorHandler(async (error, _req, reply) => {
    if (error instanceof TlabError)
      return reply.code(400).send({ error: error.message, details: error.details });
    const e = error as { statusCode?: number; message?: string };
    const status = typeof e.statusCode === 'number' && e.statusCode >= 400 ? e.statusCode : 500;
    return reply.code(status).send({ error: e.message ?? String(error) });
  });

  try {
    await app.listen({ host, port: options.port ?? DEFAULT_DASHBOARD_PORT });
  } catch (error) {
    watcher.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new TlabError(
      `dashboard: cannot listen on ${host}:${options.port ?? DEFAULT_DASHBOARD_PORT} (${code ?? (error as Error).message})`,
      code === 'EADDRINUSE' ? 'give another --port (0 picks a free one)' : undefined,
    );
  }
  const address = app.server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shown}:${address.port}/${options.token ? `?token=${encodeURIComponent(options.token)}` : ''}`;
  return {
    url,
    dir,
    close: async () => {
      closeStreams();
      watcher.close();
      await app.close();
    },
  };
}
