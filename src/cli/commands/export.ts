/** `tlab export <model-dir> --out <dir>`: an ONNX inference graph of a model folder, for use outside transferlab. */
import type { Command } from 'commander';
import { loadModelFolder } from '../../models/hf/model-folder.ts';
import { exportOnnx } from '../../models/onnx-export.ts';
import { positiveInt, printJson } from '../options.ts';

interface ExportFlags {
  out: string;
  batch: number;
  seqLen?: number;
  hiddenStates?: boolean;
  json?: boolean;
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('export a model folder as an ONNX inference graph (static batch and sequence length)')
    .argument('<model>', 'Hugging Face model folder (or one tlab saved)')
    .requiredOption('-o, --out <dir>', 'folder for model.onnx (and model.onnx_data above 1 GiB of weights)')
    .option('-b, --batch <n>', 'batch size of the graph', positiveInt, 1)
    .option('-s, --seq-len <n>', 'sequence length for text and vision-language models', positiveInt)
    .option('--hidden-states', 'also output every layer hidden state')
    .option('--json', 'print the written files and the graph inputs/outputs as JSON')
    .action((dir: string, flags: ExportFlags) => {
      const folder = loadModelFolder(dir);
      const result = exportOnnx(flags.out, folder, folder.weights, {
        batch: flags.batch,
        seqLength:
          flags.seqLen ??
          (folder.kind === 'vision-encoder' || folder.kind === 'image-classifier' ? undefined : 128),
        hiddenStates: flags.hiddenStates,
        metadata: { source: dir, model_type: folder.config.model_type },
      });
      process.stderr.write(
        `wrote ${result.modelPath}${result.dataPath ? ` and ${result.dataPath}` : ''}\n  inputs ${result.inputs.join(', ')}\n  outputs ${result.outputs.join(', ')}\n`,
      );
      if (flags.json) printJson(result);
    });
}
