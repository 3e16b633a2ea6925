/**
 * `tlab serve`: this project's models behind an OpenAI-compatible HTTP API (fastify), as vLLM serves them:
 * GET /health, GET /v1/models, POST /v1/chat/completions (text and image_url parts), POST /v1/completions (with
 * echo + logprobs, so log-likelihood evaluation works through it), streaming as server-sent events. Requests from
 * all clients are micro-batched per model. Binds 127.0.0.1 unless told otherwise, and needs an API key when bound
 * elsewhere.
 *
 * Streaming sends the answer once its batch has finished, split into one chunk per generated token (the
 * Generator decodes whole batches; it has no per-token callback), in OpenAI's chunk layout.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { TlabError } from '../../util/errors.ts';
import { LocalModel, type LocalModelOptions } from '../inference/local-model.ts';
import { ApiError } from './api-error.ts';
import { handleChat, handleCompletion, type ServedModel } from './handlers.ts';
import { resolveMediaRoots } from './media.ts';
import { MicroBatcher } from './micro-batcher.ts';

export interface ServeModelSpec {
  /** A model folder. */
  dir: string;
  /** The id clients name it by; default the folder's name. */
  name?: string;
}

export interface ServeOptions {
  /** Model folders, or models already loaded. */
  models: readonly (ServeModelSpec | LocalModel)[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** Required when `host` is not a loopback address. */
  apiKey?: string;
  /** Requests per model call; default 16. */
  maxBatch?: number;
  /** How long a request waits for others to batch with, in milliseconds; default 5. */
  batchWindowMs?: number;
  /** Largest request body in bytes; default 16 MiB. */
  maxBodyBytes?: number;
  /** Folders image_url parts may name local files in (file:// URLs, absolute paths); default none. */
  allowedLocalMediaPaths?: readonly string[];
  session?: LocalModelOptions['session'];
}

export interface ServerHandle {
  /** http://host:port */
  url: string;
  models: readonly ServedModel[];
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\./.test(host);
}

export async function startServer(options: ServeOptions): Promise<ServerHandle> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host) && !options.apiKey)
    throw new TlabError(
      `--host ${host}: binding to a non-loopback address needs --api-key, so only clients with the key can use the models`,
    );
  if (options.models.length === 0) throw new TlabError('tlab serve: give at least one model folder');
  const maxBatch = options.maxBatch ?? 16;
  const windowMs = options.batchWindowMs ?? 5;
  if (!Number.isInteger(maxBatch) || maxBatch < 1)
    throw new TlabError(`--max-batch: expected a positive integer, got ${maxBatch}`);
  if (!Number.isFinite(windowMs) || windowMs < 0)
    throw new TlabError(`--batch-window-ms: expected a number >= 0, got ${windowMs}`);
  const mediaRoots = resolveMediaRoots(options.allowedLocalMediaPaths ?? []);

  const served = new Map<string, ServedModel>();
  const created = Math.floor(Date.now() / 1000);
  try {
    for (const spec of options.models) {
      const local =
        spec instanceof LocalModel
          ? spec
          : LocalModel.load(spec.dir, {
              name: spec.name,
              batchSize: maxBatch,
              session: options.session,
              roundBatches: true,
            });
      if (served.has(local.name))
        throw new TlabError(
          `tlab serve: two models are served as '${local.name}'; give each a distinct --served-model-name`,
        );
      served.set(local.name, { local, batcher: new MicroBatcher(local, { maxBatch, windowMs }), created });
    }
  } catch (error) {
    for (const m of served.values()) if (!options.models.includes(m.local)) await m.local.release();
    throw error;
  }

  const app = Fastify({
    bodyLimit: options.maxBodyBytes ?? 16 * 1024 * 1024,
    logger: false,
    forceCloseConnections: true,
  });
  registerRoutes(app, served, { apiKey: options.apiKey, mediaRoots });
  const url = await app.listen({ host, port: options.port ?? 8000 });
  let closed = false;
  return {
    url,
    models: [...served.values()],
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      for (const m of served.values()) {
        await m.batcher.drain();
        if (!options.models.includes(m.local)) await m.local.release();
      }
    },
  };
}

function registerRoutes(
  app: FastifyInstance,
  served: ReadonlyMap<string, ServedModel>,
  config: { apiKey: string | undefined; mediaRoots: readonly string[] },
): void {
  const lookup = (name: unknown): ServedModel => {
    const m = typeof name === 'string' ? served.get(name) : undefined;
    if (!m)
      throw new ApiError(
        404,
        `The model '${String(name)}' does not exist; served: ${[...served.keys()].join(', ')}`,
        'not_found_error',
        'model',
      );
    return m;
  };

  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!config.apiKey || !request.url.startsWith('/v1')) return;
    const header = request.headers.authorization ?? '';
    const given = Buffer.from(header.replace(/^Bearer\s+/i, ''));
    const wanted = Buffer.from(config.apiKey);
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted))
      throw new ApiError(
        401,
        'invalid or missing API key (send Authorization: Bearer <key>)',
        'authentication_error',
      );
  });

  app.setErrorHandler((error: FastifyError | ApiError | Error, _request, reply) => {
    const api = toApiError(error);
    void reply.code(api.status).send(api.body());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(404, `no route ${request.method} ${request.url}`, 'not_found_error');
    void reply.code(404).send(api.body());
  });

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [...served.values()].map((m) => ({
      id: m.local.name,
      object: 'model',
      created: m.created,
      owned_by: 'transferlab',
      root: m.local.dir,
      max_model_len: m.local.capabilities.contextLength,
      max_images: m.local.capabilities.maxImages,
    })),
  }));
  app.post('/v1/chat/completions', async (request: FastifyRequest, reply: FastifyReply) =>
    handleChat(request.body, reply, lookup, config.mediaRoots),
  );
  app.post('/v1/completions', async (request: FastifyRequest, reply: FastifyReply) =>
    handleCompletion(request.body, reply, lookup),
  );
}

/** Fastify's own errors (bad JSON, too large, wrong media type) and ours as OpenAI error bodies. */
function toApiError(error: FastifyError | ApiError | Error): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof TlabError) return new ApiError(400, error.message);
  const e = error as FastifyError;
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new ApiError(
      413,
      `the request body is larger than this server's limit (${e.message})`,
      'request_too_large',
    );
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new ApiError(415, 'send the body as JSON (Content-Type: application/json)');
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
    return new ApiError(400, 'the request body is empty; expected JSON');
  if (e.statusCode === 400 || error instanceof SyntaxError)
    return new ApiError(400, `the request body is not valid JSON: ${e.message}`);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new ApiError(e.statusCode, e.message);
  return new ApiError(500, `internal error: ${error.message}`, 'server_error');
}
