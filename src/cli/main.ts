import { Command, CommanderError } from 'commander';
import { TlabError } from '../util/errors.ts';
import { registerCommands } from './commands/index.ts';

export function buildProgram(): Command {
  const program = new Command('tlab')
    .description('transferlab: measure how pre-trained transformers transfer to new tasks')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Runs the CLI and returns the process exit code; failures print one clear line first, details after. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    return reportError(error);
  }
}

export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // commander already printed its message (or the help text, exit code 0).
    return error.exitCode;
  }
  if (error instanceof TlabError) {
    process.stderr.write(`error: ${error.message}\n`);
    if (error.details) process.stderr.write(`${error.details}\n`);
    return 1;
  }
  const err = error instanceof Error ? error : new Error(String(error));
  process.stderr.write(`error: ${err.message.split('\n')[0]}\n`);
  process.stderr.write(`${err.stack ?? ''}\n`);
  return 1;
}
