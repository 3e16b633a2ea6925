/**
 * `tlab model init <config.json|preset> --out <dir> [--seed N] [--dtype D]`: a random-initialised Hugging Face
 * model folder (config, weights, tokenizer, processor) for any supported architecture; `tlab model presets` lists
 * the architecture presets (e.g. qwen2-vl-2b, Qwen2-VL-2B-Instruct's shapes).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { initModelFolder, MODEL_PRESETS, presetConfig } from '../../models/hf/init-folder.ts';
import { TlabError } from '../../util/errors.ts';
import { readJsonObject } from '../../util/json-file.ts';
import { nonNegativeInt, printJson } from '../options.ts';

const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
type Dtype = (typeof DTYPES)[number];

interface InitFlags {
  out: string;
  seed: number;
  dtype: Dtype;
  force?: boolean;
  json?: boolean;
}

function dtypeOf(value: string): Dtype {
  if (!(DTYPES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`unknown dtype '${value}'; valid: ${DTYPES.join(', ')}`);
  return value as Dtype;
}

/** The config.json document of a file or folder path, else of a preset name. */
function configFrom(spec: string): { json: Record<string, unknown>; source: string } {
  if (existsSync(spec)) {
    const file = statSync(spec).isDirectory() ? join(spec, 'config.json') : spec;
    return { json: readJsonObject(file), source: file };
  }
  if (/[/\\]|\.json$/.test(spec))
    throw new TlabError(`${spec}: file not found (a config.json, or a preset name)`);
  return { json: presetConfig(spec), source: `preset ${spec}` };
}

export function registerModelCommands(program: Command): void {
  const model = program
    .command('model')
    .description('model folders: random-initialised ones of any architecture');
  model
    .command('init')
    .description(
      'write a random-initialised Hugging Face model folder (config, weights, tokenizer, processor) for a config.json or an architecture preset',
    )
    .argument(
      '<config>',
      `a config.json (or a folder holding one), or a preset: ${Object.keys(MODEL_PRESETS).join(', ')}`,
    )
    .requiredOption('-o, --out <dir>', 'the model folder to write')
    .option('--seed <n>', 'seed of the initial weights (each tensor has its own stream)', nonNegativeInt, 0)
    .option('--dtype <dtype>', `weight type in the file: ${DTYPES.join(', ')}`, dtypeOf, 'float32')
    .option('--force', 'replace a folder that already holds a config.json')
    .option('--json', 'print what was written as JSON')
    .action((spec: string, flags: InitFlags) => {
      if (existsSync(join(flags.out, 'config.json')) && !flags.force)
        throw new TlabError(`${flags.out}: already holds a model (config.json); pass --force to replace it`);
      const { json, source } = configFrom(spec);
      const r = initModelFolder(json, flags.out, { seed: flags.seed, dtype: flags.dtype, source });
      if (flags.json) printJson(r);
      else
        process.stderr.write(
          `wrote ${r.dir}: ${r.modelType} ${r.kind}, ${(r.parameters / 1e6).toFixed(1)}M parameters (${flags.dtype}), ${r.files.join(', ')}\n`,
        );
    });
  model
    .command('presets')
    .description('list the architecture presets of tlab model init')
    .option('--json', 'print them as JSON')
    .action((flags: { json?: boolean }) => {
      const rows = Object.entries(MODEL_PRESETS).map(([name, p]) => ({
        name,
        model_type: p.config.model_type,
        description: p.description,
      }));
      if (flags.json) printJson(rows);
      else
        for (const r of rows)
          process.stdout.write(`${r.name.padEnd(16)} ${String(r.model_type).padEnd(10)} ${r.description}\n`);
    });
}
