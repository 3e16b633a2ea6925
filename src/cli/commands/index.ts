import type { Command } from 'commander';

/** Every `tlab` sub-command; each module adds its own command (and `--help`) to the program. */
export function registerCommands(program: Command): void {
  void program;
}
