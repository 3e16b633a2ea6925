/**
 * The model of a geometry condition: a Hugging Face model folder (base or fine-tuned; LoRA runs are saved merged),
 * optionally with a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) folded into its
 * weights: W + (α/r)·B·A (α/√r with use_rslora), transposed for GPT-2's Conv1D weights (fan_in_fan_out).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../engine/io/safetensors.ts';
import { type HostTensor, toFloat32 } from '../engine/tensor.ts';
import { loadModelFolder, type ModelFolder } from '../models/hf/model-folder.ts';
import { internalCandidates, nameRules } from '../models/hf/names.ts';
import { TlabError } from '../util/errors.ts';
import { readJsonObject } from '../util/json-file.ts';

export interface ModelSource {
  model: string;
  adapter?: string;
}

/** Loads the folder and merges the adapter, if any; `report.adapter` lists the merged modules. */
export function loadConditionModel(source: ModelSource): ModelFolder & { mergedModules: string[] } {
  const folder = loadModelFolder(source.model);
  if (!source.adapter) return { ...folder, mergedModules: [] };
  const configPath = join(source.adapter, 'adapter_config.json');
  const weightsPath = join(source.adapter, 'adapter_model.safetensors');
  for (const p of [configPath, weightsPath])
    if (!existsSync(p))
      throw new TlabError(`${source.adapter}: not a PEFT adapter folder (no ${p.split('/').pop()})`);
  const config = readJsonObject(configPath);
  const r = config.r;
  const alpha = config.lora_alpha;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw new TlabError(`${configPath}: r must be a positive integer, got ${JSON.stringify(r)}`);
  if (typeof alpha !== 'number' || !(alpha > 0))
    throw new TlabError(`${configPath}: lora_alpha must be a positive number, got ${JSON.stringify(alpha)}`);
  const scaling = config.use_rslora === true ? alpha / Math.sqrt(r) : alpha / r;
  const conv1d = config.fan_in_fan_out === true;
  const tensors = readSafetensors(weightsPath);
  const rules = nameRules(folder.kind, folder.config);
  const weights = new Map(folder.weights);
  const merged: string[] = [];
  for (const [key, a] of tensors) {
    if (!key.endsWith('.lora_A.weight')) continue;
    const stem = key.slice(0, -'.lora_A.weight'.length);
    const b = tensors.get(`${stem}.lora_B.weight`);
    if (!b) throw new TlabError(`${weightsPath}: '${key}' has no matching '${stem}.lora_B.weight'`);
    const hfKey = `${stem.replace(/^base_model\.model\./, '')}.weight`;
    const internal = internalCandidates(rules, hfKey).find((n) => weights.has(n));
    if (!internal)
      throw new TlabError(`${weightsPath}: '${key}' adapts '${hfKey}', which ${source.model} does not have`);
    const w = weights.get(internal) as HostTensor;
    weights.set(internal, mergeOne(w, a, b, scaling, conv1d, `${weightsPath}: ${stem}`));
    merged.push(internal);
  }
  if (merged.length === 0) throw new TlabError(`${weightsPath}: no lora_A/lora_B pairs found`);
  return { ...folder, weights, mergedModules: merged };
}

function mergeOne(
  w: HostTensor,
  a: HostTensor,
  b: HostTensor,
  s: number,
  conv1d: boolean,
  where: string,
): HostTensor {
  const [r, inF] = a.shape;
  const [outF, rb] = b.shape;
  if (rb !== r) throw new TlabError(`${where}: lora_A is [${a.shape}] but lora_B is [${b.shape}]`);
  const want = conv1d ? [inF, outF] : [outF, inF];
  if (w.shape[0] !== want[0] || w.shape[1] !== want[1])
    throw new TlabError(`${where}: the adapter is ${inF}→${outF} but the base weight is [${w.shape}]`);
  const av = Float64Array.from(toFloat32(a).data as Float32Array);
  const bv = Float64Array.from(toFloat32(b).data as Float32Array);
  const out = Float32Array.from(w.data as Float32Array);
  for (let o = 0; o < outF; o++)
    for (let i = 0; i < inF; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += bv[o * r + k] * av[k * inF + i];
      if (conv1d) out[i * outF + o] += s * d;
      else out[o * inF + i] += s * d;
    }
  return { dtype: 'float32', shape: [...w.shape], data: out };
}
