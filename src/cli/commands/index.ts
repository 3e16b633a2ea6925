import type { Command } from 'commander';
import { registerBookmarkCommands } from './bookmark.ts';
import { registerDashboardCommand } from './dashboard.ts';
import { registerDataCommands } from './data.ts';
import { registerEvalCommands } from './eval.ts';
import { registerExportCommand } from './export.ts';
import { registerGenerateCommand } from './generate.ts';
import { registerGeometryCommands } from './geometry.ts';
import { registerLabCommands } from './lab.ts';
import { registerMetricsCommands } from './metrics.ts';
import { registerModelCommands } from './model.ts';
import { registerQuickstartCommand } from './quickstart.ts';
import { registerReportCommand } from './report.ts';
import { registerServeCommand } from './serve.ts';
import { registerTrainCommands } from './train.ts';

/** Every `tlab` sub-command; each module adds its own command (and `--help`) to the program. */
export function registerCommands(program: Command): void {
  registerLabCommands(program);
  registerDataCommands(program);
  registerBookmarkCommands(program);
  registerMetricsCommands(program);
  registerGeometryCommands(program);
  registerEvalCommands(program);
  registerGenerateCommand(program);
  registerTrainCommands(program);
  registerQuickstartCommand(program);
  registerExportCommand(program);
  registerModelCommands(program);
  registerServeCommand(program);
  registerReportCommand(program);
  registerDashboardCommand(program);
}
