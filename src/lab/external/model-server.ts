/**
 * Evaluating through an OpenAI-compatible server (`evals.model_server`): the eval run either launches one server
 * per evaluated model — `vllm serve <folder>` with the vLLM settings of `evals.model_server_args`, or `tlab serve`;
 * a LoRA checkpoint as its merged folder, or (`lora: adapter`) the base model with the adapter (`--enable-lora
 * --lora-modules`) — polls GET /health until it answers 200, evaluates, and shuts it down (SIGTERM to its process
 * group, SIGKILL after shutdown_timeout_s); or it talks to a server already running at `url`. A launched server
 * that exits or stays unhealthy fails the model's cells with a message saying which, with the tail of its log.
 * On a cluster the eval run is the SLURM job, so the server runs inside its allocation (executor.slurm.stages.eval).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from '../../data/canonical-json.ts';
import { sha256Hex } from '../../data/hash.ts';
import { chooseCheckpoint, type ResolvedModel } from '../../eval/grid/config.ts';
import { OpenAiBackend } from '../../eval/inference/openai-backend.ts';
import type { InferenceBackend } from '../../eval/inference/types.ts';
import { TlabError } from '../../util/errors.ts';
import type { ModelServer, ModelServerArgs } from '../config/cluster-schema.ts';
import { type Spawned, spawnLogged, tailOf } from './process.ts';

const TLAB_BIN = fileURLToPath(new URL('../../../bin/tlab.js', import.meta.url));

/** `vllm serve` flags for the engine settings, in a fixed order (booleans are flags; the rest take a value). */
export function vllmFlags(args: ModelServerArgs): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(args).sort(([a], [b]) => a.localeCompare(b))) {
    if (value === undefined || value === false) continue;
    const flag = `--${key.replace(/_/g, '-')}`;
    if (value === true) out.push(flag);
    else if (typeof value === 'object') out.push(flag, JSON.stringify(value));
    else out.push(flag, String(value));
  }
  return out;
}

/** vLLM's accepted --max-lora-rank values; the smallest that holds rank `r`. */
const VLLM_LORA_RANKS = [8, 16, 32, 64, 128, 256, 320, 512];
export function loraRankFor(r: number): number {
  return VLLM_LORA_RANKS.find((x) => x >= r) ?? r;
}

/** What one launched server serves. */
export interface ServeSpec {
  /** The model id requests use. */
  name: string;
  /** The model folder the server loads (the base, for an adapter). */
  folder: string;
  /** A PEFT adapter served on `folder` under `name`, with its rank. */
  adapter: { dir: string; rank: number } | null;
}

/** The command line of a launched server. */
export function serverArgv(
  settings: ModelServer,
  args: ModelServerArgs,
  spec: ServeSpec,
  host: string,
  port: number,
  apiKey: string | undefined,
): string[] {
  const common = ['--host', host, '--port', String(port), ...(apiKey ? ['--api-key', apiKey] : [])];
  if (settings.launch === 'tlab') {
    if (spec.adapter)
      throw new TlabError(
        'evals.model_server.lora: adapter serving needs vLLM (launch: vllm); tlab serve takes merged folders',
      );
    if (Object.keys(args).length)
      throw new TlabError(
        'evals.model_server_args: vLLM engine settings; tlab serve (launch: tlab) takes none',
      );
    const program = settings.command ?? [process.execPath, TLAB_BIN, 'serve'];
    return [...program, spec.folder, ...common, '--served-model-name', spec.name];
  }
  const program = settings.command ?? ['vllm', 'serve'];
  if (!spec.adapter)
    return [...program, spec.folder, ...common, '--served-model-name', spec.name, ...vllmFlags(args)];
  const { max_lora_rank, ...rest } = args;
  return [
    ...program,
    spec.folder,
    ...common,
    '--served-model-name',
    `${spec.name}-base`,
    ...vllmFlags(rest),
    '--enable-lora',
    '--lora-modules',
    `${spec.name}=${spec.adapter.dir}`,
    '--max-lora-rank',
    String(max_lora_rank ?? loraRankFor(spec.adapter.rank)),
  ];
}

/** A free TCP port on `host` (bound and released; the server binds it a moment later). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls GET <url>/health until 200; throws when the process exits first or the time runs out. */
export async function waitHealthy(
  url: string,
  server: Spawned,
  timeoutMs: number,
  describe: string,
  logPath: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void server.exited.then((e) => {
    exited = e;
  });
  let wait = 200;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (exited) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      throw new TlabError(
        `${describe}: the server process ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`} before GET ${url}/health answered 200; log ${logPath}`,
        tailOf(logPath) || undefined,
      );
    }
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (error) {
      last = (error as Error).cause ? String((error as { cause: unknown }).cause) : (error as Error).message;
    }
    await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
    wait = Math.min(wait * 1.5, 2000);
  }
  throw new TlabError(
    `${describe}: the server did not become healthy within ${Math.round(timeoutMs / 1000)} s (GET ${url}/health: ${last}); log ${logPath}`,
    tailOf(logPath) || undefined,
  );
}

interface AdapterConfig {
  r?: number;
  base_model_name_or_path?: string | null;
}

/** What to serve for a grid model's folder: the checkpoint itself, or with `lora: adapter` its base plus adapter. */
export function serveSpec(
  name: string,
  dir: string,
  settings: ModelServer,
  checkpoint: number,
  where: string,
): ServeSpec {
  // PEFT adapters: TRL's LoRA output folder itself, tlab's <model>-adapter/ beside the merged folder, or adapter/.
  const adapterDir = [dir, `${dir}-adapter`, join(dir, 'adapter')].find((d) =>
    existsSync(join(d, 'adapter_config.json')),
  );
  let folder: string | null = null;
  try {
    folder = chooseCheckpoint(dir, checkpoint, where);
  } catch (error) {
    if (!adapterDir) throw error;
  }
  if (adapterDir && (settings.lora === 'adapter' || !folder)) {
    const config = JSON.parse(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8')) as AdapterConfig;
    const base = config.base_model_name_or_path;
    if (!base || !existsSync(join(base, 'config.json')))
      throw new TlabError(
        `${where}: ${adapterDir}: the adapter's base_model_name_or_path (${base ?? 'none'}) is not a model folder here, so the base cannot be served with it`,
      );
    return { name, folder: resolve(base), adapter: { dir: adapterDir, rank: config.r ?? 16 } };
  }
  return { name, folder: folder!, adapter: null };
}

/** Identifies what a launched server serves, for the cells' cache keys (the grid's server `revision`). */
export function serveRevision(spec: ServeSpec, settings: ModelServer, args: ModelServerArgs): string {
  return sha256Hex(
    canonicalJson({ launch: settings.launch, command: settings.command ?? null, spec, args }),
  ).slice(0, 16);
}

/**
 * The eval grid's openBackend for launched servers: starts the server for `spec`, waits for /health, connects the
 * OpenAI client, and stops the server when the grid closes the backend.
 */
export async function openLaunchedServer(
  model: ResolvedModel,
  spec: ServeSpec,
  settings: ModelServer,
  args: ModelServerArgs,
  logPath: string,
  apiKey: string | undefined,
): Promise<InferenceBackend> {
  const host = settings.host ?? '127.0.0.1';
  const port = settings.port ?? (await freePort(host));
  const argv = serverArgv(settings, args, spec, host, port, apiKey);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const describe = `model server for ${model.name} (${argv.slice(0, settings.command ? settings.command.length : 2).join(' ')})`;
  const server = spawnLogged(argv, { cwd: process.cwd(), logPath, what: describe });
  const stop = () => server.stop(settings.shutdown_timeout_s * 1000);
  let backend: OpenAiBackend;
  try {
    await waitHealthy(url, server, settings.health_timeout_s * 1000, describe, logPath);
    backend = await OpenAiBackend.connect({
      baseUrl: url,
      model: spec.name,
      apiKey,
      concurrency: settings.concurrency ?? model.server?.concurrency ?? 8,
      timeoutMs: settings.timeout_s === undefined ? undefined : settings.timeout_s * 1000,
      ...(model.dir && existsSync(join(model.dir, 'tokenizer.json')) ? { tokenizer: model.dir } : {}),
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    get model() {
      return backend.model;
    },
    get capabilities() {
      return backend.capabilities;
    },
    chat: (requests, onProgress) => backend.chat(requests, onProgress),
    loglik: (requests, onProgress) => backend.loglik(requests, onProgress),
    async close() {
      try {
        await backend.close();
      } finally {
        await stop();
      }
    },
  };
}
