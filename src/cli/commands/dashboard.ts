/** `tlab dashboard <experiment-dir>`: a local web app over the experiment's result files until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { DEFAULT_DASHBOARD_PORT, startDashboard } from '../../web/server.ts';
import { nonNegativeInt } from '../options.ts';

interface Flags {
  host: string;
  port: number;
  token?: string;
  serveUrl?: string;
  serveApiKey?: string;
  playgroundLog?: string;
}

export function registerDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description(
      'a local web dashboard of an experiment folder: runs, curves, transfer heatmap, estimators, geometry, samples down to raw images, bookmarks and a model playground; updates while runs progress',
    )
    .argument(
      '<experiment-dir>',
      'the experiment folder (tlab run writes one; an eval grid folder works too)',
    )
    .option('--host <host>', 'address to bind; anything but loopback needs --token', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', nonNegativeInt, DEFAULT_DASHBOARD_PORT)
    .option(
      '--token <secret>',
      'require this token (the printed URL carries it; the browser keeps it in a cookie)',
    )
    .option('--serve-url <url>', 'the playground talks to this OpenAI-compatible server (tlab serve)')
    .option('--serve-api-key <key>', "the model server's --api-key")
    .option(
      '--playground-log <file>',
      'JSONL log of playground exchanges (default <experiment-dir>/playground/exchanges.jsonl)',
    )
    .action(async (dir: string, flags: Flags) => {
      const server = await startDashboard({
        dir,
        host: flags.host,
        port: flags.port,
        token: flags.token,
        serveUrl: flags.serveUrl,
        serveApiKey: flags.serveApiKey,
        playgroundLog: flags.playgroundLog,
      });
      process.stderr.write(`tlab dashboard: ${server.dir}\n`);
      // The URL alone on stdout, so scripts (and tests) can read where it listens.
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
      process.stderr.write('tlab dashboard: shutting down\n');
      await server.close();
    });
}
