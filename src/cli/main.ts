import { Command, CommanderError } from 'commander';
import { didYouMean } from '../util/did-you-mean.ts';
import { unknownEnvSettings } from '../util/env.ts';
import { TlabError, validChoices } from '../util/errors.ts';
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
  for (const warning of unknownEnvSettings()) process.stderr.write(`warning: ${warning}\n`);
  try {
    checkCommandPath(program, argv.slice(2));
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    return reportError(error);
  }
}

/**
 * Rejects an unknown (sub-)command before commander parses: commander answers `tlab <typo> --help` with the
 * top-level help and exit code 0, so a typo would look like success whatever flags follow.
 */
export function checkCommandPath(program: Command, args: readonly string[]): void {
  let command = program;
  for (const arg of args) {
    if (arg.startsWith('-')) continue; // group commands take no option values, only --help/--version
    if (command.commands.length === 0 || arg === 'help') return;
    const sub = command.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) {
      const names = command.commands.map((c) => c.name());
      const where = command === program ? 'tlab' : `tlab ${command.name()}`;
      throw new TlabError(
        `${where}: unknown command '${arg}'${didYouMean(arg, names)}`,
        `commands: ${validChoices(names)}`,
      );
    }
    command = sub;
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
