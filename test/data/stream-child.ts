/**
 * Child process of the streaming memory test: builds one task from a Parquet file and prints the RSS before
 * the build and the process's peak RSS (bytes), so the parent can bound the growth.
 */
import { buildTaskDataset } from '../../src/data/build/build-task.ts';
import { TaskConfigSchema } from '../../src/data/config.ts';

const [file, out, mode] = process.argv.slice(2);
const task = TaskConfigSchema.parse({ dataset: file, image_column: 'image', user_prompt: 'Row {id}', mode });
const baseline = process.memoryUsage().rss;
const result = await buildTaskDataset('big', task, { outDir: out, baseDir: '/', file: 'test', quiet: true });
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(`${JSON.stringify({ baseline, peak, rows: result.splits.train })}\n`);
