/**
 * `tlab eval ...`: grading, the eval grid, the transfer matrix and shift analysis. Each sub-command lives in its
 * own module (eval-*.ts) and registers itself on the `eval` command here.
 */
import type { Command } from 'commander';
import { registerEvalGrade } from './eval-grade.ts';
import { registerEvalGrid } from './eval-grid.ts';
import { registerEvalShift } from './eval-shift.ts';
import { registerEvalTransfer } from './eval-transfer.ts';

export function registerEvalCommands(program: Command): void {
  const evalCommand = program
    .command('eval')
    .description(
      'evaluate models on tasks: grade predictions, run the eval grid, transfer matrix, shift analysis',
    );
  registerEvalGrade(evalCommand);
  registerEvalGrid(evalCommand);
  registerEvalTransfer(evalCommand);
  registerEvalShift(evalCommand);
}
