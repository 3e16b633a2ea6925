/** `tlab serve <model-folder>...`: the models behind an OpenAI-compatible HTTP API until SIGINT/SIGTERM. */
import { type Command, InvalidArgumentError } from 'commander';
import { startServer } from '../../eval/serve/server.ts';
import { TlabError } from '../../util/errors.ts';
import { nonNegativeInt, positiveInt } from '../options.ts';

interface Flags {
  host: string;
  port: number;
  apiKey?: string;
  maxBatch: number;
  batchWindowMs: number;
  maxBody: number;
  servedModelName?: string[];
  allowedLocalMediaPath?: string[];
}

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  k: 1024,
  mb: 1024 ** 2,
  m: 1024 ** 2,
  gb: 1024 ** 3,
  g: 1024 ** 3,
};

/** "16mb", "512kb", "1048576" → bytes. */
export function byteSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || unit === undefined)
    throw new InvalidArgumentError(`expected a size such as 16mb, 512kb or a byte count, got '${value}'`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < 1) throw new InvalidArgumentError(`expected a size of at least 1 byte, got '${value}'`);
  return bytes;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number >= 0, got '${value}'`);
  return n;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve model folders behind an OpenAI-compatible API (chat, completions with logprobs, SSE)')
    .argument('<model-folders...>', 'model folders (causal LM or VLM, with tokenizer.json)')
    .option('--host <host>', 'address to bind; anything but loopback needs --api-key', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', nonNegativeInt, 8000)
    .option('--api-key <key>', 'require Authorization: Bearer <key> on /v1 routes')
    .option('--max-batch <n>', 'most requests per model call', positiveInt, 16)
    .option(
      '--batch-window-ms <ms>',
      'how long a request waits for others to batch with',
      nonNegativeNumber,
      5,
    )
    .option('--max-body <size>', 'largest request body (e.g. 16mb)', byteSize, 16 * 1024 * 1024)
    .option('--served-model-name <name>', 'the id of each model folder, in order (repeatable)', collect)
    .option(
      '--allowed-local-media-path <dir>',
      'let image_url parts name local files inside this folder (repeatable)',
      collect,
    )
    .action(async (folders: string[], flags: Flags) => {
      const names = flags.servedModelName ?? [];
      if (names.length > folders.length)
        throw new TlabError(
          `--served-model-name: ${names.length} names for ${folders.length} model folder(s); give at most one per folder`,
        );
      const server = await startServer({
        models: folders.map((dir, i) => ({ dir, name: names[i] })),
        host: flags.host,
        port: flags.port,
        apiKey: flags.apiKey,
        maxBatch: flags.maxBatch,
        batchWindowMs: flags.batchWindowMs,
        maxBodyBytes: flags.maxBody,
        allowedLocalMediaPaths: flags.allowedLocalMediaPath,
      });
      const served = server.models.map((m) => `${m.local.name} (${m.local.dir})`).join(', ');
      process.stderr.write(`tlab serve: ${served}\n`);
      // The URL alone on stdout, so scripts (and tests) can read where the server listens.
      process.stdout.write(`${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      process.stderr.write('tlab serve: shutting down\n');
      await server.close();
    });
}
