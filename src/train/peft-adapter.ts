/**
 * LoRA adapters in Hugging Face PEFT's layout, so a fine-tune is usable by the ecosystem (`PeftModel.from_pretrained`,
 * vLLM's LoRA serving, ...) and adapters trained elsewhere load here:
 *   adapter_config.json        LoraConfig.to_dict(): peft_type LORA, r, lora_alpha, lora_dropout, target_modules,
 *                              use_rslora, fan_in_fan_out, bias, base_model_name_or_path, task_type, ...
 *   adapter_model.safetensors  `base_model.model.<module path>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]
 *                              (peft/utils/save_and_load.py get_peft_model_state_dict drops the adapter name)
 * Module paths are those of the Hugging Face model (the checkpoint keys this project saves, e.g.
 * `transformer.h.0.attn.c_attn` for GPT-2, `model.layers.0.self_attn.q_proj` for Llama). target_modules lists
 * every adapted module path exactly (PEFT matches a list entry by equality or as a `.`-suffix), so regex or
 * component-restricted targets survive the trip. PEFT scales by lora_alpha / r (use_rslora: / √r), as here.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { readSafetensors, writeSafetensors } from '../engine/io/safetensors.ts';
import { Graph } from '../engine/ir/graph.ts';
import type { HostTensor } from '../engine/tensor.ts';
import type { HfConfig } from '../models/hf/configs.ts';
import { fileKeyOf, internalCandidates, nameRules } from '../models/hf/names.ts';
import type { LoadedModel } from '../models/hf/registry.ts';
import { type LoraConfig, type LoraModule, loraScaling, mergeLora } from '../nn/lora.ts';
import { ParamBuilder } from '../nn/module.ts';
import { tempPathFor, writeJsonAtomic } from '../util/atomic-write.ts';
import { TlabError, validChoices } from '../util/errors.ts';
import { readJsonFile } from '../util/json-file.ts';
import { zodIssuesError } from '../util/zod-errors.ts';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** PeftModel wraps LoraModel wraps the Hugging Face model: every saved key starts with this. */
const PEFT_PREFIX = 'base_model.model.';

type TrainableModel = LoadedModel & { config: HfConfig };

/** The LoRA modules (path, layout, sizes, scaling) a model gets under `lora`, found by building its graph. */
export function loraModulesOf(loaded: TrainableModel, lora: LoraConfig): Map<string, LoraModule> {
  const graph = new Graph();
  const pb = new ParamBuilder(graph, 'float32', lora);
  const ids = graph.input('input_ids', 'int64', [1, 1]);
  if (loaded.kind === 'causal-lm') loaded.model.forward(pb, { ids });
  else if (loaded.kind === 'vlm') {
    const e = loaded.model.encoder;
    const pixelValues = graph.input('pixel_values', 'float32', [1, e.numChannels, e.imageSize, e.imageSize]);
    loaded.model.forward(pb, { ids, pixelValues });
  } else throw new TlabError(`LoRA adapters: a ${loaded.kind} is not a language or vision-language model`);
  return pb.loraModules;
}

/** The Hugging Face module path of an internal module path (its weight's checkpoint key without `.weight`). */
function hfModulePath(loaded: TrainableModel, path: string): string {
  return fileKeyOf(nameRules(loaded.kind, loaded.config), `${path}.weight`).replace(/\.weight$/, '');
}

export interface SavePeftOptions {
  lora: LoraConfig;
  /** What PEFT loads the adapter onto: the model folder (or hub id) training started from. */
  baseModel: string;
}

/** Writes `weights`' adapters of `modules` as a PEFT adapter folder (atomically); returns the files written. */
export function savePeftAdapter(
  dir: string,
  loaded: TrainableModel,
  modules: Iterable<LoraModule>,
  weights: ReadonlyMap<string, HostTensor>,
  options: SavePeftOptions,
): string[] {
  const list = [...modules].sort((a, b) => a.path.localeCompare(b.path));
  if (list.length === 0) throw new TlabError(`saving ${dir}: the model has no LoRA modules`);
  const tensors = new Map<string, HostTensor>();
  const targets: string[] = [];
  for (const m of list) {
    const hf = hfModulePath(loaded, m.path);
    targets.push(hf);
    for (const part of ['lora_A', 'lora_B']) {
      const t = weights.get(`${m.path}.${part}.weight`);
      if (!t) throw new TlabError(`saving ${dir}: adapter weight '${m.path}.${part}.weight' is missing`);
      tensors.set(`${PEFT_PREFIX}${hf}.${part}.weight`, t);
    }
  }
  const layouts = new Set(list.map((m) => m.layout));
  const config = {
    peft_type: 'LORA',
    task_type: loaded.kind === 'causal-lm' ? 'CAUSAL_LM' : null,
    base_model_name_or_path: options.baseModel,
    revision: null,
    inference_mode: true,
    r: options.lora.r,
    lora_alpha: options.lora.alpha,
    lora_dropout: options.lora.dropout ?? 0,
    use_rslora: options.lora.rsLora ?? false,
    target_modules: targets,
    // GPT-2's Conv1D stores [in, out]: PEFT then needs fan_in_fan_out (it is one flag for the whole adapter).
    fan_in_fan_out: layouts.has('conv1d'),
    bias: 'none',
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: false,
  };
  if (layouts.size > 1)
    throw new TlabError(
      `saving ${dir}: the adapted modules mix Conv1D and Linear layouts, which one PEFT fan_in_fan_out flag cannot describe`,
    );
  mkdirSync(dirname(dir), { recursive: true });
  const temp = tempPathFor(dir);
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(temp, { recursive: true });
  try {
    writeSafetensors(join(temp, ADAPTER_WEIGHTS), tensors, { format: 'pt' });
    writeJsonAtomic(join(temp, ADAPTER_CONFIG), config);
    rmSync(dir, { recursive: true, force: true });
    renameSync(temp, dir);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  return [ADAPTER_CONFIG, ADAPTER_WEIGHTS];
}

const PeftLoraConfigSchema = z.looseObject({
  peft_type: z.literal('LORA', { error: 'only LoRA adapters (peft_type LORA) are read' }),
  r: z.int().min(1),
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).max(1).default(0),
  use_rslora: z.boolean().default(false),
  fan_in_fan_out: z.boolean().default(false),
  bias: z.literal('none', { error: "only bias: 'none' is supported (no trained biases)" }).default('none'),
  use_dora: z.literal(false, { error: 'DoRA adapters are not supported' }).default(false),
  modules_to_save: z
    .null({ error: 'modules_to_save (fully trained modules beside the adapter) is not supported' })
    .optional(),
  rank_pattern: z.record(z.string(), z.unknown()).default({}),
  alpha_pattern: z.record(z.string(), z.unknown()).default({}),
  base_model_name_or_path: z.string().nullable().optional(),
});

export interface PeftAdapter {
  dir: string;
  /** The adapter's LoRA settings, targets as the exact internal module paths it adapts. */
  lora: LoraConfig;
  baseModel: string | null;
  /** Internal names (`<module>.lora_A.weight`, `<module>.lora_B.weight`) → tensors. */
  weights: Map<string, HostTensor>;
}

/** Reads a PEFT LoRA adapter folder for `loaded`, mapping its keys to this model's parameter names. */
export function readPeftAdapter(
  dir: string,
  loaded: TrainableModel,
  paramNames: ReadonlySet<string>,
): PeftAdapter {
  const configPath = join(dir, ADAPTER_CONFIG);
  if (!existsSync(configPath)) {
    const has = existsSync(dir) ? readdirSync(dir) : [];
    throw new TlabError(
      `${dir}: not a PEFT adapter folder (no ${ADAPTER_CONFIG})`,
      has.length ? `it holds: ${validChoices(has, 10)}` : undefined,
    );
  }
  const parsed = PeftLoraConfigSchema.safeParse(readJsonFile(configPath));
  if (!parsed.success) throw zodIssuesError(configPath, [], parsed.error);
  const c = parsed.data;
  if (Object.keys(c.rank_pattern).length || Object.keys(c.alpha_pattern).length)
    throw new TlabError(`${configPath}: rank_pattern / alpha_pattern (per-module ranks) are not supported`);
  const weightsPath = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(weightsPath))
    throw new TlabError(
      `${weightsPath}: missing`,
      existsSync(join(dir, 'adapter_model.bin'))
        ? 'adapter_model.bin (pickle) is not read; save the adapter with safe_serialization=True'
        : undefined,
    );
  const rules = nameRules(loaded.kind, loaded.config);
  const weights = new Map<string, HostTensor>();
  const modules = new Set<string>();
  for (const [key, t] of readSafetensors(weightsPath)) {
    const m = /^(?:base_model\.model\.)?(.+)\.(lora_[AB])(?:\.[^.]+)?\.weight$/.exec(key);
    if (!m)
      throw new TlabError(
        `${weightsPath}: '${key}' is not a LoRA weight (<module>.lora_A.weight or <module>.lora_B.weight)`,
      );
    const [, hfPath, part] = m;
    const internal = internalCandidates(rules, `${hfPath}.weight`).find((n) => paramNames.has(n));
    if (!internal)
      throw new TlabError(
        `${weightsPath}: '${key}' adapts '${hfPath}', which this ${loaded.config.model_type} model does not have`,
      );
    const path = internal.replace(/\.weight$/, '');
    modules.add(path);
    weights.set(`${path}.${part}.weight`, t);
  }
  if (modules.size === 0) throw new TlabError(`${weightsPath}: holds no LoRA weights`);
  for (const p of modules)
    for (const part of ['lora_A', 'lora_B'])
      if (!weights.has(`${p}.${part}.weight`))
        throw new TlabError(`${weightsPath}: '${p}' has no ${part} weight`);
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    dir,
    lora: {
      r: c.r,
      alpha: c.lora_alpha,
      dropout: c.lora_dropout,
      rsLora: c.use_rslora,
      targets: [...modules].sort().map((p) => new RegExp(`^${escaped(p)}$`)),
    },
    baseModel: c.base_model_name_or_path ?? null,
    weights,
  };
}

/**
 * Base weights with a PEFT adapter folded in: W + s·B·A per adapted module (the layout, Linear or Conv1D, comes
 * from the model). Shapes are checked against the model's modules.
 */
export function applyPeftAdapter(
  dir: string,
  loaded: TrainableModel,
  base: ReadonlyMap<string, HostTensor>,
): Map<string, HostTensor> {
  const adapter = readPeftAdapter(dir, loaded, new Set(base.keys()));
  const modules = loraModulesOf(loaded, adapter.lora);
  for (const m of modules.values()) {
    const a = adapter.weights.get(`${m.path}.lora_A.weight`)!;
    const b = adapter.weights.get(`${m.path}.lora_B.weight`)!;
    const wantA = [adapter.lora.r, m.inFeatures];
    const wantB = [m.outFeatures, adapter.lora.r];
    if (a.shape.join() !== wantA.join() || b.shape.join() !== wantB.join())
      throw new TlabError(
        `${join(dir, ADAPTER_WEIGHTS)}: '${m.path}': lora_A is [${a.shape}] and lora_B [${b.shape}], the module needs [${wantA}] and [${wantB}] (r = ${adapter.lora.r})`,
      );
  }
  const scaling = loraScaling(adapter.lora);
  const all = new Map(base);
  for (const [n, t] of adapter.weights) all.set(n, t);
  const merged = mergeLora(
    all,
    [...modules.values()].map((m) => ({ ...m, scaling })),
  );
  for (const n of adapter.weights.keys()) merged.delete(n);
  return merged;
}
