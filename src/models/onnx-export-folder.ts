/**
 * Exports a model folder as a portable ONNX folder in the layout Hugging Face optimum writes and transformers.js
 * (and anything else that runs onnxruntime) loads: `config.json`, `generation_config.json` (text models), the
 * tokenizer and processor files copied from the source folder, and under `onnx/`:
 *
 * - decoder LMs: `model.onnx` (input_ids, attention_mask, position_ids, past_key_values.* → logits, present.*);
 * - vision encoders and image classifiers: `model.onnx` (pixel_values → last_hidden_state + pooler_output, or logits);
 * - LLaVA: `vision_encoder.onnx`, `embed_tokens.onnx` and `decoder_model_merged.onnx` (taking inputs_embeds),
 *   the sessions transformers.js's LlavaForConditionalGeneration opens;
 *
 * each also as the requested weight variants (`model_fp16.onnx`, `model_int8.onnx`, `model_quantized.onnx`,
 * `model_uint8.onnx`, `model_q4.onnx`). Every axis that depends on the batch or the sequence is dynamic.
 * Files are written into a temporary folder and moved in, config.json last.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '../engine/tensor.ts';
import type { TextTokenizer } from '../tokenize/types.ts';
import { tempPathFor, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError } from '../util/errors.ts';
import { readJsonObject } from '../util/json-file.ts';
import type { Gpt2Config } from './gpt2.ts';
import type { HfConfig } from './hf/configs.ts';
import { AUXILIARY_FILES } from './hf/model-folder.ts';
import type { LoadedModel } from './hf/registry.ts';
import type { LlamaConfig } from './llama.ts';
import type { ExportGraph } from './onnx-export-builder.ts';
import { type DecoderConfig, decoderWithPastGraph, embedTokensGraph } from './onnx-export-decoder.ts';
import { DEFAULT_EXTERNAL_THRESHOLD, writeOnnxFile } from './onnx-export-file.ts';
import { VARIANT_SUFFIX, type WeightVariant, weightVariant } from './onnx-export-quantize.ts';
import {
  imageClassifierGraph,
  llavaVisionGraph,
  type VisionConfig,
  visionEncoderGraph,
} from './onnx-export-vision.ts';
import type { LlavaConfig } from './vlm.ts';

export interface PortableExportOptions {
  /** Weight variants to write (default fp32 only: `model.onnx`); each is a file per graph. */
  variants?: readonly (WeightVariant | 'fp32')[];
  /** Move weights to `<file>_data` above this many bytes of initializers (default 1 GiB). */
  externalDataThreshold?: number;
  /** Extra metadata_props entries in every ONNX file. */
  metadata?: Record<string, string>;
  /** Called after each ONNX file is written, with the number written so far and the total. */
  onFile?: (file: string, done: number, total: number) => void;
}

export interface PortableExportFile {
  /** Path relative to the export folder, e.g. onnx/model_q4.onnx. */
  file: string;
  /** The external data file beside it, or null. */
  data: string | null;
  variant: WeightVariant | 'fp32';
  inputs: string[];
  outputs: string[];
}

export interface PortableExportResult {
  dir: string;
  /** ONNX files written under onnx/. */
  onnx: PortableExportFile[];
  /** Other files written (config, generation config, tokenizer and processor files). */
  files: string[];
}

/** A model folder as loaded (loadModelFolder): its kind, config, weights and source folder. */
export type ExportSource = LoadedModel & {
  dir: string;
  config: HfConfig;
  weights: ReadonlyMap<string, HostTensor>;
  /** The folder's tokenizer: its stop and pad ids fill generation_config.json where the config has none. */
  tokenizer?: Pick<TextTokenizer, 'stopIds' | 'padId'> | null;
};

/** The ONNX graphs of a model by transformers.js session file name (model, vision_encoder, ...). */
export function portableGraphs(source: ExportSource): Record<string, ExportGraph> {
  const { config, weights } = source;
  switch (source.kind) {
    case 'causal-lm':
      return { model: decoderWithPastGraph(config as DecoderConfig, source.model, weights) };
    case 'vision-encoder':
      return { model: visionEncoderGraph(visionConfig(config), source.model, weights) };
    case 'image-classifier':
      return {
        model: imageClassifierGraph(
          visionConfig(config),
          source.model.encoder,
          source.model.numLabels,
          weights,
        ),
      };
    case 'vlm': {
      const llava = config as LlavaConfig;
      const vlm = source.model;
      const text = (
        llava.tie_word_embeddings ? { ...llava.text_config, tie_word_embeddings: true } : llava.text_config
      ) as Gpt2Config | LlamaConfig;
      const prefix = 'language_model.';
      return {
        vision_encoder: llavaVisionGraph(llava, vlm.encoder, vlm.hiddenSize, vlm.imageTokens, weights),
        embed_tokens: embedTokensGraph(text, vlm.decoder, weights, prefix),
        decoder_model_merged: decoderWithPastGraph(text, vlm.decoder, weights, {
          inputsEmbeds: true,
          prefix,
          name: 'llava-decoder-with-past',
        }),
      };
    }
    case 'sequence-classifier':
      throw new TlabError(
        `${join(source.dir, 'config.json')}: architectures: a ${config.model_type} sequence classifier has no portable (KV-cache) export`,
        'export it with --static (fixed batch and sequence length), or export the causal LM',
      );
  }
}

function visionConfig(config: HfConfig): VisionConfig {
  if (config.model_type === 'clip') return config.vision_config;
  return config as VisionConfig;
}

export function exportPortableFolder(
  dir: string,
  source: ExportSource,
  options: PortableExportOptions = {},
): PortableExportResult {
  const graphs = portableGraphs(source);
  const variants: (WeightVariant | 'fp32')[] = [...new Set(options.variants ?? (['fp32'] as const))];
  if (!variants.length) throw new TlabError('ONNX export: no weight variant to write');
  const temp = tempPathFor(dir);
  mkdirSync(join(temp, 'onnx'), { recursive: true });
  const onnx: PortableExportFile[] = [];
  const files: string[] = [];
  const external: Record<string, boolean> = {};
  try {
    for (const [base, g] of Object.entries(graphs)) {
      for (const variant of variants) {
        const file = `${base}${VARIANT_SUFFIX[variant]}.onnx`;
        const graph = weightVariant(g, variant);
        const written = writeOnnxFile(join(temp, 'onnx', file), graph, {
          externalDataThreshold: options.externalDataThreshold ?? DEFAULT_EXTERNAL_THRESHOLD,
          metadata: {
            model_type: source.config.model_type,
            kind: source.kind,
            weights: variant,
            ...options.metadata,
          },
        });
        if (written.dataPath) external[file] = true;
        options.onFile?.(`onnx/${file}`, onnx.length + 1, Object.keys(graphs).length * variants.length);
        onnx.push({
          file: `onnx/${file}`,
          data: written.dataPath ? `onnx/${file}_data` : null,
          variant,
          inputs: graph.inputs.map((i) => i.name),
          outputs: graph.outputs.map((o) => o.name),
        });
      }
    }
    for (const f of AUXILIARY_FILES) {
      if (f === 'generation_config.json') continue;
      if (existsSync(join(source.dir, f))) {
        copyFileSync(join(source.dir, f), join(temp, f));
        files.push(f);
      }
    }
    const generation = generationConfig(source);
    if (generation) {
      writeJsonAtomic(join(temp, 'generation_config.json'), generation);
      files.push('generation_config.json');
    }
    writeJsonAtomic(join(temp, 'config.json'), exportedConfig(source, external));
    files.push('config.json');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    removeStaleOnnx(join(dir, 'onnx'), onnx);
    for (const o of onnx) {
      renameSync(join(temp, o.file), join(dir, o.file));
      if (o.data) renameSync(join(temp, o.data), join(dir, o.data));
    }
    for (const f of files.filter((f) => f !== 'config.json')) renameSync(join(temp, f), join(dir, f));
    renameSync(join(temp, 'config.json'), join(dir, 'config.json'));
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
  return { dir, onnx, files };
}

/** ONNX files of an earlier export into the same folder that this one does not write (another model's q4...). */
function removeStaleOnnx(folder: string, written: readonly PortableExportFile[]): void {
  const keep = new Set(written.flatMap((o) => [o.file, o.data].filter((f): f is string => f !== null)));
  for (const name of readdirSync(folder))
    if (/\.onnx(_data(_\d+)?)?$/.test(name) && !keep.has(`onnx/${name}`))
      rmSync(join(folder, name), { force: true });
}

/**
 * The source config.json with the kind's architecture, and a transformers.js_config naming the files whose
 * weights live in external data (transformers.js only fetches `<file>_data` when told to).
 */
function exportedConfig(source: ExportSource, external: Record<string, boolean>): Record<string, unknown> {
  const path = join(source.dir, 'config.json');
  const config: Record<string, unknown> = existsSync(path) ? readJsonObject(path) : { ...source.config };
  const own = (config['transformers.js_config'] ?? {}) as Record<string, unknown>;
  if (Object.keys(external).length)
    config['transformers.js_config'] = { ...own, use_external_data_format: external };
  return config;
}

/**
 * generation_config.json: the source folder's, else the special token ids of the (text) config, with the
 * tokenizer's stop and pad ids where the config has none, so transformers.js stops where `tlab generate` does.
 */
function generationConfig(source: ExportSource): Record<string, unknown> | null {
  if (source.kind !== 'causal-lm' && source.kind !== 'vlm') return null;
  const path = join(source.dir, 'generation_config.json');
  if (existsSync(path)) return readJsonObject(path);
  const text = (
    source.kind === 'vlm' ? (source.config as LlavaConfig).text_config : source.config
  ) as DecoderConfig;
  const out: Record<string, unknown> = {};
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) {
    const v = text[key];
    if (v !== undefined && v !== null) out[key] = v;
  }
  const stop = source.tokenizer?.stopIds ?? [];
  if (out.eos_token_id === undefined && stop.length)
    out.eos_token_id = stop.length === 1 ? stop[0] : [...stop];
  const pad = source.tokenizer?.padId;
  if (out.pad_token_id === undefined && pad !== undefined) out.pad_token_id = pad;
  return out;
}
