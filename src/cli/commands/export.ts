/**
 * `tlab export <model-dir> --out <dir>`: a model folder as ONNX for use outside transferlab. By default the
 * portable folder transformers.js, optimum and onnxruntime load (dynamic batch and sequence axes, a KV cache for
 * text generation, config and tokenizer files beside onnx/), optionally with fp16 weights and int8/uint8/q4
 * quantized variants; `--static` writes this project's fixed-shape inference graph as one model.onnx instead.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import { exportOnnx } from '../../models/onnx-export.ts';
import { exportPortableFolder } from '../../models/onnx-export-folder.ts';
import { QUANTIZATIONS, type Quantization, type WeightVariant } from '../../models/onnx-export-quantize.ts';
import { TlabError } from '../../util/errors.ts';
import { Progress } from '../../util/progress.ts';
import { positiveInt, printJson } from '../options.ts';

interface ExportFlags {
  out: string;
  static?: boolean;
  batch?: number;
  seqLen?: number;
  hiddenStates?: boolean;
  dtype: ('fp32' | 'fp16')[];
  quantize: Quantization[];
  json?: boolean;
}

const DTYPES = ['fp32', 'fp16'] as const;

function listOf<T extends string>(valid: readonly T[], what: string) {
  return (value: string): T[] => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const item of items)
      if (!(valid as readonly string[]).includes(item))
        throw new InvalidArgumentError(`unknown ${what} '${item}'; valid: ${valid.join(', ')}`);
    if (!items.length) throw new InvalidArgumentError(`expected one or more of ${valid.join(', ')}`);
    return items as T[];
  };
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'export a model folder as ONNX: a transformers.js / optimum folder with dynamic axes and a KV cache (default), or a fixed-shape graph (--static)',
    )
    .argument('<model>', 'Hugging Face model folder (or one tlab saved)')
    .requiredOption(
      '-o, --out <dir>',
      'output folder (config, tokenizer and onnx/*.onnx; with --static: model.onnx)',
    )
    .option(
      '--dtype <list>',
      `float weight types to write, comma-separated: ${DTYPES.join(', ')} (model.onnx, model_fp16.onnx)`,
      listOf(DTYPES, 'dtype'),
      ['fp32'],
    )
    .option(
      '--quantize <list>',
      `also write weight-only quantized variants: ${QUANTIZATIONS.join(', ')} (model_int8.onnx, model_quantized.onnx, model_uint8.onnx, model_q4.onnx)`,
      listOf(QUANTIZATIONS, 'quantization'),
      [],
    )
    .option('--static', "this project's fixed-shape inference graph as one model.onnx (no KV cache)")
    .option('-b, --batch <n>', 'with --static: batch size of the graph (default 1)', positiveInt)
    .option(
      '-s, --seq-len <n>',
      "with --static: sequence length for text and vision-language models (default: the model's context)",
      positiveInt,
    )
    .option('--hidden-states', 'with --static: also output every layer hidden state')
    .option('--json', 'print the written files and the graph inputs/outputs as JSON')
    .action((dir: string, flags: ExportFlags) => {
      checkFlags(flags);
      const folder = loadModelFolder(dir);
      if (flags.static) {
        if (flags.dtype.some((d) => d !== 'fp32') || flags.quantize.length)
          throw new TlabError(
            '--static writes float32 weights only; drop --dtype fp16 / --quantize, or --static',
          );
        const text = folder.kind !== 'vision-encoder' && folder.kind !== 'image-classifier';
        const context = text ? contextOf(folder) : undefined;
        const seqLength = text ? (flags.seqLen ?? context) : undefined;
        const result = exportOnnx(flags.out, folder, folder.weights, {
          batch: flags.batch ?? 1,
          seqLength,
          hiddenStates: flags.hiddenStates,
          metadata: { source: dir, model_type: folder.config.model_type },
        });
        process.stderr.write(
          `wrote ${result.modelPath}${result.dataPath ? ` and ${result.dataPath}` : ''}\n  inputs ${result.inputs.join(', ')}\n  outputs ${result.outputs.join(', ')}\n`,
        );
        if (flags.json) printJson(result);
        return;
      }
      const variants: (WeightVariant | 'fp32')[] = [...flags.dtype, ...flags.quantize];
      let progress: Progress | null = null;
      const result = exportPortableFolder(flags.out, folder, {
        variants,
        metadata: { source: dir },
        onFile: (file, done, total) => {
          progress ??= new Progress({ total, label: 'export', unit: 'file' });
          progress.tick(1, file);
          if (done === total) progress.finish();
        },
      });
      process.stderr.write(
        `wrote ${result.dir}: ${[...result.files, ...result.onnx.map((o) => o.file)].join(', ')}\n`,
      );
      if (flags.json) printJson(result);
    });
}

/** Flags that belong to the other export mode, refused before the model is loaded. */
function checkFlags(flags: ExportFlags): void {
  if (flags.static) {
    if (flags.dtype.some((d) => d !== 'fp32') || flags.quantize.length)
      throw new TlabError(
        '--static writes float32 weights only; drop --dtype fp16 / --quantize, or --static',
      );
    return;
  }
  for (const [flag, given] of [
    ['--batch', flags.batch],
    ['--seq-len', flags.seqLen],
    ['--hidden-states', flags.hiddenStates],
  ] as const)
    if (given !== undefined)
      throw new TlabError(`${flag} applies to --static exports; the portable export has dynamic axes`);
}

/** The longest sequence the text model accepts (n_positions / max_position_embeddings). */
function contextOf(folder: ReturnType<typeof loadModelFolder>): number {
  switch (folder.kind) {
    case 'causal-lm':
    case 'vlm':
      return folder.model.maxPositions;
    case 'sequence-classifier':
      return folder.model.decoder.maxPositions;
    default:
      throw new TlabError(`${folder.dir}: a ${folder.kind} has no sequence length`);
  }
}
